//! Command-line types only; see `docs/cli.md` for the contract.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

#[derive(Debug, Parser)]
#[command(
    name = "runbook",
    version,
    about = "Disaster-recovery runbook executor"
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Clone, Args)]
pub struct Global {
    /// Inventory file.
    #[arg(short, long, global = true, value_name = "FILE")]
    pub inventory: Option<PathBuf>,
    /// Override a runbook variable (repeatable).
    #[arg(long = "var", global = true, value_name = "KEY=VALUE")]
    pub vars: Vec<String>,
    /// Where runs are recorded.
    #[arg(
        long,
        global = true,
        env = "RUNBOOK_STATE_DIR",
        default_value = ".runbook",
        value_name = "DIR"
    )]
    pub state_dir: PathBuf,
    /// Print only errors and results.
    #[arg(short, long, global = true)]
    pub quiet: bool,
    /// More diagnostics (repeatable); `RUST_LOG` also works.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
    #[arg(long, global = true, value_enum, default_value_t = ColorChoice::Auto)]
    pub color: ColorChoice,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ColorChoice {
    Auto,
    Always,
    Never,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check runbooks (files or folders) and the inventory.
    Validate(ValidateArgs),
    /// Show the execution plan: waves, hosts, critical path, RTOs.
    Plan(PlanArgs),
    /// Execute a runbook (or rehearse it with `--dry-run`).
    Run(RunArgs),
    /// Run only the probes: a board of what is up and what is still down.
    Status(StatusArgs),
    /// Continue an interrupted, paused or failed run from its journal.
    Resume(ResumeArgs),
    /// Confirm a manual or `confirm: true` step of a paused run.
    Confirm(ConfirmArgs),
    /// Record that a failed or paused step was fixed or skipped by hand.
    Mark(MarkArgs),
    /// List the runs in the state dir.
    Runs(RunsArgs),
    /// The report of a run: per phase against its RTO, per step and host.
    Report(ReportArgs),
    /// The shift-change summary of a run, for the operator taking over.
    Handoff(HandoffArgs),
    /// Serve a read-only web board of a run, live while it runs.
    Board(BoardArgs),
    /// Print the JSON Schema of runbooks and inventories.
    Schema(SchemaArgs),
    /// The inventory as resolved, and where each setting came from.
    Inventory(InventoryArgs),
    /// Check a run's journal hash chain, or an evidence bundle and its journal.
    Verify(VerifyArgs),
    /// Bundle a run's journal, logs, runbook, inventory and reports, with a manifest.
    Evidence(EvidenceArgs),
    /// Print a shell completion script (bash, zsh, fish, elvish, powershell).
    Completions(CompletionsArgs),
    /// Print the manual page (roff): `runbook man | man -l -`.
    Man(ManArgs),
}

#[derive(Debug, Args)]
pub struct CompletionsArgs {
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

#[derive(Debug, Args)]
pub struct ManArgs {
    /// A command's own page (`runbook-plan(1)`); the main page when omitted.
    #[arg(value_name = "COMMAND")]
    pub command: Option<String>,
}

#[derive(Debug, Args)]
pub struct InventoryArgs {
    /// Show only this host.
    #[arg(long, value_name = "NAME")]
    pub host: Option<String>,
    /// `json` has the shape of `ansible-inventory --list`.
    #[arg(long, value_enum, default_value_t = InventoryFormat::Text)]
    pub format: InventoryFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum InventoryFormat {
    Text,
    Json,
}

#[derive(Debug, Args)]
pub struct ResumeArgs {
    /// Default: the latest unfinished run.
    pub run_id: Option<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

/// How a run executes; shared by `run` and `resume`.
#[derive(Debug, Args)]
pub struct ExecArgs {
    /// How many host operations run at once.
    #[arg(long, default_value_t = 50)]
    pub forks: usize,
    /// Confirm every manual and `confirm: true` step (rehearsals).
    #[arg(long)]
    pub yes: bool,
    /// Who runs this (default: $USER).
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    /// A YAML map of secret names to values.
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ConfirmArgs {
    pub run_id: String,
    pub step: String,
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
    #[arg(long, value_name = "TEXT")]
    pub note: Option<String>,
}

#[derive(Debug, Args)]
pub struct MarkArgs {
    pub run_id: String,
    pub step: String,
    #[arg(value_enum)]
    pub status: MarkStatusArg,
    /// Why: mandatory, it goes into the journal and the report.
    #[arg(long, value_name = "TEXT", required = true)]
    pub note: String,
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum MarkStatusArg {
    Done,
    Skipped,
}

#[derive(Debug, Args)]
pub struct RunsArgs {
    #[arg(long, value_enum, default_value_t = RunsFormat::Table)]
    pub format: RunsFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum RunsFormat {
    Table,
    Json,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    pub runbook: PathBuf,
    /// Touch no host: show every rendered command, in order.
    #[arg(long)]
    pub dry_run: bool,
    /// Run only these steps (their unselected dependencies count as done).
    #[arg(long, value_delimiter = ',', value_name = "ID,...")]
    pub only: Vec<String>,
    /// Run this step and every step that depends on it.
    #[arg(long, value_name = "ID")]
    pub from: Option<String>,
    /// Run only steps with one of these tags.
    #[arg(long, value_delimiter = ',', value_name = "T,...")]
    pub tags: Vec<String>,
    /// Serve the run's web board on ADDR while it runs (see `runbook board`).
    #[arg(long, value_name = "ADDR")]
    pub board: Option<std::net::SocketAddr>,
    /// The token the board asks for (`Authorization: Bearer` or `?token=`);
    /// better from RUNBOOK_BOARD_TOKEN: arguments show in `ps`.
    #[arg(long, value_name = "TOKEN", env = "RUNBOOK_BOARD_TOKEN")]
    pub board_token: Option<String>,
    #[command(flatten)]
    pub exec: ExecArgs,
}

#[derive(Debug, Args)]
pub struct BoardArgs {
    /// Default: the latest run.
    pub run_id: Option<String>,
    /// Where to listen.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: std::net::SocketAddr,
    /// Every request must carry it (`Authorization: Bearer` or `?token=`);
    /// better from RUNBOOK_BOARD_TOKEN: arguments show in `ps`.
    #[arg(long, value_name = "TOKEN", env = "RUNBOOK_BOARD_TOKEN")]
    pub token: Option<String>,
}

#[derive(Debug, Args)]
pub struct StatusArgs {
    pub runbook: PathBuf,
    #[arg(long, default_value_t = 50)]
    pub forks: usize,
    /// A YAML map of secret names to values.
    #[arg(long, value_name = "FILE")]
    pub secrets: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct ValidateArgs {
    #[arg(required = true, value_name = "PATH")]
    pub paths: Vec<PathBuf>,
    #[arg(long, value_enum, default_value_t = ValidateFormat::Human)]
    pub format: ValidateFormat,
    /// Treat warnings as failures (exit 1).
    #[arg(long)]
    pub strict: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ValidateFormat {
    Human,
    Json,
    Github,
}

#[derive(Debug, Args)]
pub struct PlanArgs {
    pub runbook: PathBuf,
    #[arg(long, value_enum, default_value_t = PlanFormat::Text)]
    pub format: PlanFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum PlanFormat {
    Text,
    Json,
    Dot,
    Mermaid,
}

#[derive(Debug, Args)]
pub struct SchemaArgs {
    /// Which schema; both (as `anyOf`) when omitted.
    #[arg(value_enum)]
    pub kind: Option<SchemaKind>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SchemaKind {
    Runbook,
    Inventory,
}

#[derive(Debug, Args)]
pub struct ReportArgs {
    /// Default: the latest run.
    pub run_id: Option<String>,
    #[arg(long, value_enum, default_value_t = ReportFormat::Md)]
    pub format: ReportFormat,
    /// Write to FILE instead of stdout.
    #[arg(short, long, value_name = "FILE")]
    pub output: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct HandoffArgs {
    /// Default: the latest run.
    pub run_id: Option<String>,
    /// Decisions and notes since TIME (RFC 3339, or back from now: `8h`);
    /// default: since the last hand-off.
    #[arg(long, value_name = "TIME", value_parser = crate::report::handoff::parse_since)]
    pub since: Option<crate::report::handoff::Since>,
    #[arg(long, value_enum, default_value_t = HandoffFormat::Md)]
    pub format: HandoffFormat,
    /// Who hands over (default: $USER); journaled as a hand-off.
    #[arg(long, value_name = "NAME")]
    pub operator: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum HandoffFormat {
    Md,
    Text,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum ReportFormat {
    Md,
    Html,
    Json,
    Junit,
}

#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// A run id of the state dir, or an evidence bundle (`FILE.tar.gz`).
    #[arg(value_name = "RUN_ID|FILE.tar.gz")]
    pub target: String,
}

#[derive(Debug, Args)]
pub struct EvidenceArgs {
    pub run_id: String,
    /// The bundle to write (gzipped tar).
    #[arg(short, long, value_name = "FILE.tar.gz")]
    pub output: PathBuf,
    /// Replace FILE if it exists (evidence is never overwritten otherwise).
    #[arg(long)]
    pub force: bool,
}
