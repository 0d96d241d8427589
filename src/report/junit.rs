//! JUnit XML: one test case per step and host, for CI dashboards of
//! rehearsals.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::run_report::RunReport;
use crate::events::HostOutcome;
use crate::journal::Status;

pub fn render(r: &RunReport) -> Result<String, String> {
    let mut report = Report::new(format!("runbook {}", r.runbook));
    let mut suite = TestSuite::new(r.runbook.clone());
    // Everyone who acted on the run over its shifts, as `runs` lists them.
    suite.add_property(Property::new("run_id", r.run_id.clone()));
    suite.add_property(Property::new("operators", r.operators.join(",")));
    for s in &r.steps {
        let class = s.phase.clone().unwrap_or_else(|| r.runbook.clone());
        if s.hosts.is_empty() {
            let status = match s.outcome {
                o if o.is_success() => TestCaseStatus::success(),
                other => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(match &s.blocked_by {
                        Some(by) => format!("blocked: `{by}` failed"),
                        None => other.label().to_string(),
                    });
                    st
                }
            };
            let mut case = TestCase::new(s.id.clone(), status);
            case.set_classname(class.clone());
            if let Some(d) = s.duration_secs {
                case.set_time(std::time::Duration::from_secs_f64(d.max(0.0)));
            }
            suite.add_test_case(case);
            continue;
        }
        for h in &s.hosts {
            let status = match h.outcome {
                o if o.is_failure() => {
                    let mut st = TestCaseStatus::non_success(NonSuccessKind::Failure);
                    st.set_message(
                        h.message
                            .clone()
                            .unwrap_or_else(|| h.outcome.label().to_string()),
                    );
                    st.set_type(h.outcome.label());
                    if !h.stderr_tail.is_empty() {
                        st.set_description(h.stderr_tail.join("\n"));
                    }
                    st
                }
                Status::Done(HostOutcome::Skipped) => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(h.message.clone().unwrap_or_else(|| "skipped".into()));
                    st
                }
                _ => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(format!("{} @ {}", s.id, h.host), status);
            case.set_classname(class.clone());
            case.set_time(std::time::Duration::from_secs_f64(h.duration_secs.max(0.0)));
            suite.add_test_case(case);
        }
    }
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}
