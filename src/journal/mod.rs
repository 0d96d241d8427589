//! Reading a run's journal: [`fold::RunView`] is the one interpretation of
//! the events that every reader (summary, `runs`, report, resume, decisions,
//! history) shares, and [`versions`] the runbooks a run executed.

pub mod fold;
pub mod versions;

pub use fold::{Decision, DecisionKind, HostView, RunStatus, RunView, Status, StepView};
