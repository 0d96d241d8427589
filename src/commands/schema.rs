//! `runbook schema`.

use crate::cli::{SchemaArgs, SchemaKind};
use crate::error::SUCCESS;

pub fn run(args: &SchemaArgs) -> u8 {
    let schema = match args.kind {
        Some(SchemaKind::Runbook) => crate::schema::runbook(),
        Some(SchemaKind::Inventory) => crate::schema::inventory(),
        None => crate::schema::combined(),
    };
    println!("{schema:#}");
    SUCCESS
}
