//! The dry-run transport: no connection, no process. Every command
//! "succeeds" instantly, and a probe answers what shows the path that does
//! the work, so the scheduler walks the whole plan.

use std::time::Duration;

use super::{ExecFuture, Exit, Job, Output, ProbeFuture, Transport};
use crate::exec::probe::{ProbeJob, ProbeResult, Rendered, render};
use crate::model::Host;

pub struct DryRun;

fn success() -> Output {
    Output {
        exit: Exit::Code(0),
        stdout: Vec::new(),
        stderr: Vec::new(),
        stdout_dropped: 0,
        stderr_dropped: 0,
        duration: Duration::ZERO,
    }
}

impl Transport for DryRun {
    fn exec<'a>(&'a self, _host: &'a Host, _job: Job<'a>) -> ExecFuture<'a> {
        Box::pin(async { Ok(success()) })
    }

    /// A check in front of a `run` does not pass (so the run is shown); a
    /// check that is the whole step, and every verify, do. Nothing is
    /// probed: a `tcp` or `http` probe would touch the network.
    fn probe<'a>(&'a self, host: &'a Host, job: ProbeJob<'a>) -> ProbeFuture<'a> {
        Box::pin(async move {
            let (what, output) = match render(&job, host) {
                Ok(rendered) => {
                    let output = matches!(rendered, Rendered::Command { .. }).then(success);
                    let what = match &job.probe.via {
                        Some(via) => format!("{} via {via}", rendered.what()),
                        None => rendered.what(),
                    };
                    (what, output)
                }
                Err((what, _)) => (what, None),
            };
            ProbeResult {
                passed: !job.before_run,
                what,
                detail: Some("dry-run".into()),
                output,
                duration: Duration::ZERO,
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;

    /// The rehearsal's answers, with a listener that counts connections:
    /// nothing reaches it.
    #[tokio::test]
    async fn a_rehearsal_answers_probes_without_touching_the_network() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let runbook = crate::exec::dispatcher::tests::runbook(
            dir.path(),
            &format!(
                "version: 1\nname: r\nsteps:\n  - {{id: s, check: {{tcp: {{port: {port}, host: 127.0.0.1}}}}, run: 'true', verify: {{command: 'false'}}}}\n"
            ),
        );
        let step = &runbook.steps[0];
        let host = Host::controller(BTreeMap::new());
        let context = minijinja::Value::UNDEFINED;
        let ask = |probe, before_run| ProbeJob {
            probe,
            context: &context,
            templates: &runbook.templates,
            tag: "00",
            before_run,
            r#become: None,
        };
        let check = DryRun
            .probe(&host, ask(step.check.as_ref().unwrap(), true))
            .await;
        assert!(
            !check.passed,
            "a check before a run fails, so the run shows"
        );
        assert_eq!(check.what, format!("tcp 127.0.0.1:{port}"));
        assert!(check.output.is_none());
        let verify = DryRun
            .probe(&host, ask(step.verify.as_ref().unwrap(), false))
            .await;
        assert!(verify.passed, "a verify passes");
        assert_eq!(verify.what, "false");
        assert_eq!(verify.detail.as_deref(), Some("dry-run"));
        assert!(
            listener.accept().is_err(),
            "the rehearsal connected to the port"
        );
    }
}
