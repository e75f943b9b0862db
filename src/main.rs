//! The `tally` binary: parses the command line and hands over to the library.

use std::process::ExitCode;

/// mimalloc instead of the C library's allocator: serving a request allocates and frees many
/// small values (rows, JSON, futures) across worker threads, where glibc's malloc and free
/// were about a quarter of the server's CPU time under load (docs/OPERATIONS.md).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> ExitCode {
    tally::cli::run().await
}
