//! One integration test binary; every test drives the real `runbook` binary.

mod corpus;
mod error_messages;
mod examples;
mod fuzz;
mod harness;
mod inputs;
mod journal;
mod plan;
mod report;
mod run;
mod schema;
mod ssh;
mod sshd;
