//! `sqltun completions SHELL`: the completion script on stdout.

use crate::cli::CompletionsArgs;
use crate::error::Result;
use crate::output;

pub(super) fn run(args: CompletionsArgs) -> Result<()> {
    output::data(&crate::completions::script(args.shell))
}
