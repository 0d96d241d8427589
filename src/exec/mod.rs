//! Executing a validated runbook: a dispatcher over the step DAG, workers
//! per (step, host), and transports.

pub mod confirm;
pub mod context;
pub mod dispatcher;
pub mod launch;
pub mod operator;
pub mod probe;
pub mod probes;
pub mod selection;
pub mod transport;
pub mod worker;
