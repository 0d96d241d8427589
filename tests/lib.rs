//! One integration test binary; every test drives the real `runbook` binary.

mod ansible;
mod corpus;
mod error_messages;
mod examples;
mod fold;
mod fuzz;
mod harness;
mod inputs;
mod journal;
mod login;
mod plan;
mod processes;
mod report;
mod run;
mod schema;
mod secrets;
mod ssh;
mod ssh_config;
mod sshd;
mod state;
mod sudo;
mod terminal;
mod tools;
