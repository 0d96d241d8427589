//! The dry-run transport: no connection, no process. Every command
//! "succeeds" instantly, so the scheduler walks the whole plan.

use std::time::Duration;

use super::{ExecFuture, Exit, Job, Output, Transport};
use crate::model::Host;

pub struct DryRun;

impl Transport for DryRun {
    fn exec<'a>(&'a self, _host: &'a Host, _job: Job<'a>) -> ExecFuture<'a> {
        Box::pin(async {
            Ok(Output {
                exit: Exit::Code(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                stdout_dropped: 0,
                stderr_dropped: 0,
                duration: Duration::ZERO,
            })
        })
    }

    fn is_real(&self) -> bool {
        false
    }
}
