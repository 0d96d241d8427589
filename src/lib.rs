//! `runbook`: dependency-aware disaster-recovery runbooks over SSH.
//!
//! The pipeline: `load` (YAML with positions) -> `validate` (model) ->
//! `plan` -> execution -> reports.

// `print!` and company for the whole crate, in place of std's, which panic
// when a write fails: a closed stdout (`runbook plan | head -1`) or a hung-up
// terminal (SIGHUP) must not end a command with a panic, least of all a run
// half done. What cannot be written is dropped; the journal has it all.
macro_rules! print {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stdout(), $($arg)*);
    }};
}
macro_rules! println {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stdout(), $($arg)*);
    }};
}
macro_rules! eprint {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::write!(::std::io::stderr(), $($arg)*);
    }};
}
macro_rules! eprintln {
    ($($arg:tt)*) => {{
        use ::std::io::Write as _;
        let _ = ::std::writeln!(::std::io::stderr(), $($arg)*);
    }};
}

pub mod board;
pub mod cli;
pub mod commands;
pub mod diagnostic;
pub mod error;
pub mod events;
pub mod exec;
pub mod history;
pub mod journal;
pub mod load;
pub mod model;
pub mod notify;
pub mod plan;
pub mod redact;
pub mod report;
pub mod resume;
pub mod schema;
pub mod state;
pub mod template;
pub mod validate;

use std::process::ExitCode;

use clap::Parser;

/// Parses the command line and runs the command; the binary is only this.
#[must_use]
pub fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            let _ = e.print();
            return ExitCode::from(if e.use_stderr() {
                error::INVALID_INPUT
            } else {
                error::SUCCESS
            });
        }
    };
    raise_open_files_limit();
    init_tracing(
        cli.global.verbose,
        cli.global.quiet,
        color(cli.global.color),
    );
    match commands::dispatch(&cli) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            // An error may quote a journal or what a host printed.
            redact::eprintln_printable!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

/// Lifts the soft limit on open files to the hard one, as servers do: a
/// run keeps a connection (a socket and a wake-up socket pair) per host,
/// and the usual soft limit of 1,024 is below what 1,000 hosts hold. The
/// SSH pool still keeps within whatever limit remains (see `ssh.rs`).
fn raise_open_files_limit() {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: a valid rlimit for getrlimit to fill and setrlimit to read.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < limit.rlim_max
        {
            limit.rlim_cur = limit.rlim_max;
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// Whether stderr gets ANSI colors: `--color`, then `NO_COLOR`, then
/// whether it is a terminal.
fn color(choice: cli::ColorChoice) -> bool {
    use std::io::IsTerminal as _;
    match choice {
        cli::ColorChoice::Always => true,
        cli::ColorChoice::Never => false,
        cli::ColorChoice::Auto => {
            std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                && std::io::stderr().is_terminal()
        }
    }
}

fn init_tracing(verbose: u8, quiet: bool, ansi: bool) {
    let default = match (quiet, verbose) {
        (true, _) => "error",
        (false, 0) => "warn",
        (false, 1) => "info",
        (false, 2) => "debug",
        _ => "trace",
    };
    let filter = log_filter(std::env::var("RUST_LOG").ok().as_deref(), default);
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .with_target(false)
        // Its report of a failed write is an `eprintln!` that panics.
        .log_internal_errors(false)
        .try_init();
}

/// `RUST_LOG` with its bare levels applied to this crate only: at `debug`
/// dependencies log request lines and hex dumps (ureq: URLs holding
/// secrets), so a dependency logs below `warn` only when named
/// (`RUST_LOG=ureq=debug`).
fn log_filter(rust_log: Option<&str>, default: &str) -> tracing_subscriber::EnvFilter {
    use tracing_subscriber::{EnvFilter, filter::LevelFilter};
    let fallback = || EnvFilter::new(format!("runbook={default}"));
    let Some(spec) = rust_log.filter(|s| !s.trim().is_empty()) else {
        return fallback();
    };
    let directives: Vec<String> = spec
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| {
            if d.parse::<LevelFilter>().is_ok() {
                format!("runbook={d}")
            } else {
                d.to_string()
            }
        })
        .collect();
    EnvFilter::try_new(format!("warn,{}", directives.join(","))).unwrap_or_else(|_| fallback())
}
