//! The `vtep` command: parses the command line, sets up logging and `--netns`, and hands the
//! command to [`vtep::cli::run`].

use std::io::IsTerminal as _;

use clap::Parser as _;
use vtep::cli::{Cli, Command};

fn main() {
    let cli = Cli::parse();
    if !matches!(cli.command, Command::Up(_)) {
        // A command whose reader went away (`vtep fdb show | head`) ends quietly, as other
        // command-line tools do, instead of panicking on the failed write. `vtep up` keeps
        // Rust's default (ignored), so a closed log pipe never kills the datapath's owner.
        // SAFETY: called before any other thread exists; SIG_DFL is a valid disposition.
        unsafe { libc::signal(libc::SIGPIPE, libc::SIG_DFL) };
    }
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        // Colours only for a person at a terminal, never into log files or journald.
        .with_ansi(std::io::stderr().is_terminal())
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("VTEP_LOG")
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .init();
    if let Err(e) = real_main(cli) {
        eprintln!("vtep: {e:#}");
        std::process::exit(1);
    }
}

fn real_main(cli: Cli) -> anyhow::Result<()> {
    // Before the runtime exists, so every thread starts in that namespace.
    if let Some(ns) = &cli.netns {
        vtep::sys::netns::enter_for_process(ns)?;
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(vtep::cli::run(cli.command))
}
