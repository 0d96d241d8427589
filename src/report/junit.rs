//! JUnit XML: one test case per step and host, for CI dashboards of
//! rehearsals.

use quick_junit::{NonSuccessKind, Property, Report, TestCase, TestCaseStatus, TestSuite};

use super::run_report::RunReport;
use crate::events::HostOutcome;
use crate::journal::Status;

/// `text` as valid XML 1.0, which has no control character but TAB, LF
/// and CR, nor U+FFFE or U+FFFF, not even as character references. Each
/// is written as an escape, as on a terminal: quick-junit would drop it,
/// and with it the rest of an escape sequence, from what is evidence.
fn xml(text: &str) -> String {
    let text = crate::redact::printable(text);
    if !text.contains(['\u{fffe}', '\u{ffff}']) {
        return text;
    }
    text.replace('\u{fffe}', r"\u{fffe}")
        .replace('\u{ffff}', r"\u{ffff}")
}

pub fn render(r: &RunReport) -> Result<String, String> {
    let mut report = Report::new(xml(&format!("runbook {}", r.runbook)));
    let mut suite = TestSuite::new(xml(&r.runbook));
    // Everyone who acted on the run over its shifts, as `runs` lists them.
    suite.add_property(Property::new("run_id", xml(&r.run_id)));
    suite.add_property(Property::new("operators", xml(&r.operators.join(","))));
    for s in &r.steps {
        let class = xml(s.phase.as_deref().unwrap_or(&r.runbook));
        if s.hosts.is_empty() {
            let status = match s.outcome {
                o if o.is_success() => TestCaseStatus::success(),
                other => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(match &s.blocked_by {
                        Some(by) => xml(&format!("blocked: `{by}` failed")),
                        None => other.label().to_string(),
                    });
                    st
                }
            };
            let mut case = TestCase::new(xml(&s.id), status);
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
                    st.set_message(xml(h
                        .message
                        .as_deref()
                        .unwrap_or_else(|| h.outcome.label())));
                    st.set_type(h.outcome.label());
                    if !h.stderr_tail.is_empty() {
                        st.set_description(xml(&h.stderr_tail.join("\n")));
                    }
                    st
                }
                Status::Done(HostOutcome::Skipped) => {
                    let mut st = TestCaseStatus::skipped();
                    st.set_message(xml(h.message.as_deref().unwrap_or("skipped")));
                    st
                }
                _ => TestCaseStatus::success(),
            };
            let mut case = TestCase::new(xml(&format!("{} @ {}", s.id, h.host)), status);
            case.set_classname(class.clone());
            case.set_time(std::time::Duration::from_secs_f64(h.duration_secs.max(0.0)));
            suite.add_test_case(case);
        }
    }
    report.add_test_suite(suite);
    report.to_string().map_err(|e| e.to_string())
}
