//! `agentguard record`: follow a process tree until it ends and write what it did (the
//! profile, the event log, a baseline it learns into), or check it live against a baseline.
use anyhow::Result;

use crate::cli::RecordArgs;

pub fn run(args: RecordArgs) -> Result<i32> {
    crate::session::run(args, None)
}
