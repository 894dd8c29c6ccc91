//! The `ephysd` command line: `run`, `check-config`, `inspect`, `recover`, `--version`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ephysd::config::{self, ConfigSource};

#[derive(Parser)]
#[command(name = "ephysd", version, about = "Acquisition daemon for electrophysiology rigs")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon in the foreground (what systemd runs).
    Run {
        /// Configuration file layered over the built-in defaults.
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Validate the configuration and print the effective result.
    CheckConfig {
        #[arg(long, value_name = "PATH")]
        config: Option<PathBuf>,
    },
    /// Say what recordings hold: channels, rate, duration, spikes, stims, gaps, data
    /// streams, and whether each was closed cleanly. Exits 1 if a file cannot be read.
    Inspect {
        /// Recording files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        /// One JSON object per file, for scripts.
        #[arg(long)]
        json: bool,
    },
    /// Close recordings whose writer died (a crash, a power cut), keeping every whole frame.
    Recover {
        /// Recording files.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Run { config } => {
            let source = ConfigSource::from_process(config);
            match ephysd::daemon::run(&source) {
                Ok(()) => ExitCode::SUCCESS,
                Err(e) => {
                    eprintln!("ephysd: {e}");
                    ExitCode::FAILURE
                }
            }
        }
        Command::Inspect { files, json } => ephysd::cli::inspect::run(&files, json),
        Command::Recover { files } => ephysd::cli::recover::run(&files),
        Command::CheckConfig { config } => match config::load(&ConfigSource::from_process(config)).and_then(|s| {
            ephysd::grpc::security::Credentials::load(&s.server)
                .map(|_| s)
                .map_err(|e| config::ConfigError::Other(e.to_string()))
        }) {
            Ok(settings) => {
                print!("{}", settings.to_toml());
                ExitCode::SUCCESS
            }
            Err(e) => {
                eprintln!("ephysd: {e}");
                ExitCode::FAILURE
            }
        },
    }
}
