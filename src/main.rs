//! The `personio-sync` binary: parses the command line and runs it.

use clap::Parser;

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
