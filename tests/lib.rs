//! One integration test binary; every test drives the real `runbook` binary.

mod ansible;
mod channels;
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
mod probes_pdns;
mod probes_ptls;
mod probes_smtp_sip;
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
