//! The `tally` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc, keeping freed memory (see `tally::allocator`).
#[global_allocator]
static ALLOCATOR: tally::allocator::Allocator = tally::allocator::Allocator {};

#[tokio::main]
async fn main() -> ExitCode {
    tally::allocator::keep_freed_memory();
    tally::cli::run().await
}
