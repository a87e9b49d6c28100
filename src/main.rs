//! The `personio-sync` binary: parses the command line and runs it.

use clap::Parser;

/// mimalloc instead of glibc's malloc: the webhook front door allocates on every
/// request from many threads, where glibc's arena locks showed up as futex wake-ups
/// (see BENCHMARKS.md, ingest profile).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = personio_sync::cli::Cli::parse();
    match personio_sync::cli::run(cli).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("personio-sync: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
