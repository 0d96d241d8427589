//! `runbook completions SHELL` and `runbook man [COMMAND]`: generated from
//! the clap definitions, so they cannot drift from what the parser accepts.

use clap::CommandFactory as _;

use crate::cli::{Cli, CompletionsArgs, ManArgs};
use crate::error::{Error, SUCCESS};

pub fn completions(args: &CompletionsArgs) -> u8 {
    let mut cmd = Cli::command();
    // Into memory first: the generators panic on a failed write, and a
    // closed stdout must not end in a panic.
    let mut script = Vec::new();
    clap_complete::generate(args.shell, &mut cmd, "runbook", &mut script);
    print!("{}", String::from_utf8_lossy(&script));
    SUCCESS
}

/// The exit codes of docs/cli.md, which clap cannot know.
const EXIT_STATUS: &str = r#".SH "EXIT STATUS"
.TP
\fB0\fR
success
.TP
\fB1\fR
a step failed, \fBvalidate \-\-strict\fR found warnings, or \fBverify\fR found a broken chain or bundle
.TP
\fB2\fR
invalid input: usage, an invalid runbook or inventory, an unknown run id, a missing secret,
another run holding the state directory's lock
.TP
\fB3\fR
paused for an operator (\fBrunbook confirm\fR, then \fBrunbook resume\fR)
.TP
\fB130\fR
interrupted
"#;

pub fn man(args: &ManArgs) -> Result<u8, Error> {
    let mut cmd = Cli::command();
    cmd.build();
    let page = match &args.command {
        None => cmd,
        Some(name) => {
            let Some(sub) = cmd.find_subcommand(name) else {
                let names: Vec<&str> = cmd.get_subcommands().map(clap::Command::get_name).collect();
                return Err(Error::Usage(format!(
                    "no command `{name}`; one of: {}",
                    names.join(", ")
                )));
            };
            // Built, it is `runbook-plan(1)` (as git names its pages) with
            // the synopsis `runbook plan`.
            sub.clone()
        }
    };
    let mut roff = Vec::new();
    // Writing to memory cannot fail.
    let _ = clap_mangen::Man::new(page)
        .source(concat!("runbook ", env!("CARGO_PKG_VERSION")))
        .render(&mut roff);
    roff.extend_from_slice(EXIT_STATUS.as_bytes());
    print!("{}", String::from_utf8_lossy(&roff));
    Ok(SUCCESS)
}
