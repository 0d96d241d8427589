//! The dry-run transport: no connection, no process. Every command
//! "succeeds" instantly, so the scheduler walks the whole plan.

use std::time::Duration;

use super::{ExecFuture, Exit, Output, Transport};
use crate::model::Host;

pub struct DryRun;

impl Transport for DryRun {
    fn exec<'a>(
        &'a self,
        _host: &'a Host,
        _command: &'a str,
        _timeout: Option<Duration>,
    ) -> ExecFuture<'a> {
        Box::pin(async {
            Ok(Output {
                exit: Exit::Code(0),
                stdout: Vec::new(),
                stderr: Vec::new(),
                duration: Duration::ZERO,
            })
        })
    }

    fn is_real(&self) -> bool {
        false
    }
}
