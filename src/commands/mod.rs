//! One file per subcommand; each returns its exit code.

mod board;
mod completions;
mod decide;
mod evidence;
mod handoff;
mod input;
mod inventory;
mod plan;
pub(crate) mod report;
mod resume;
mod run;
mod runs;
mod schema;
mod secrets;
mod status;
mod validate;
mod verify;

use crate::cli::{Cli, Command};
use crate::error::Error;

pub fn dispatch(cli: &Cli) -> Result<u8, Error> {
    match &cli.command {
        Command::Validate(args) => validate::run(&cli.global, args),
        Command::Plan(args) => plan::run(&cli.global, args),
        Command::Run(args) => run::run(&cli.global, args),
        Command::Status(args) => status::run(&cli.global, args),
        Command::Resume(args) => resume::run(&cli.global, args),
        Command::Confirm(args) => decide::confirm(&cli.global, args),
        Command::Mark(args) => decide::mark(&cli.global, args),
        Command::Runs(args) => runs::run(&cli.global, args),
        Command::Report(args) => report::run(&cli.global, args),
        Command::Handoff(args) => handoff::run(&cli.global, args),
        Command::Board(args) => board::run(&cli.global, args),
        Command::Schema(args) => Ok(schema::run(args)),
        Command::Inventory(args) => inventory::run(&cli.global, args),
        Command::Verify(args) => verify::run(&cli.global, args),
        Command::Evidence(args) => evidence::run(&cli.global, args),
        Command::Completions(args) => Ok(completions::completions(args)),
        Command::Man(args) => completions::man(args),
    }
}
