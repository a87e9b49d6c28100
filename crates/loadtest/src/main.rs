//! The `personio-sync-bench` binary: the load tool (see BENCHMARKS.md). It runs the
//! service in process (and, for the idle-tenant scenario and ingest with `--nodes`, the
//! `personio-sync` binary built beside it), with the same allocator as the shipped
//! binary.

use clap::Parser;

/// The shipped binary's allocator, so the figures measure the service as it runs.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Load tool: starts the service and both simulators on loopback and measures ingest,
/// end-to-end latency, full syncs and idle tenants (see BENCHMARKS.md).
#[derive(Debug, Parser)]
#[command(name = "personio-sync-bench", version, about)]
struct Cli {
    /// What to measure and how.
    #[command(flatten)]
    args: personio_sync_bench::BenchArgs,
}

#[tokio::main]
async fn main() -> std::process::ExitCode {
    let cli = Cli::parse();
    match personio_sync_bench::run(cli.args).await {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("personio-sync-bench: {error:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
