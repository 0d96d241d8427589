//! `runbook board [RUN_ID] [--listen ADDR] [--token TOKEN]`.

use crate::board::{self, BoardError};
use crate::cli::{BoardArgs, Global};
use crate::error::{Error, SUCCESS};
use crate::state;

pub fn run(global: &Global, args: &BoardArgs) -> Result<u8, Error> {
    let id = match &args.run_id {
        Some(id) => id.clone(),
        None => super::report::latest_run(global)?,
    };
    // An unknown run, or a journal that is not one, stops here.
    state::read_run(&global.state_dir, &id)?;
    let listener = board::listen(args.listen, args.token.as_deref())
        .map_err(|e| Error::Usage(e.to_string()))?;
    eprintln!(
        "board of run {id}: {} (Ctrl-C to stop)",
        board::url(&listener, args.token.as_deref())
    );
    board::follow(listener, args.token.clone(), global.state_dir.clone(), id).map_err(
        |e| match e {
            BoardError::Listen { .. } | BoardError::EmptyToken => Error::Usage(e.to_string()),
            BoardError::Runtime(_) => Error::Runtime(e.to_string()),
        },
    )?;
    Ok(SUCCESS)
}
