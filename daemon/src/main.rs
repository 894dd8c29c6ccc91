//! The `ephysd` command line: `run`, `check-config`, `devices`, `inspect`, `recover`,
//! `--version`, and `status`, `stream`, `record`, `config` to drive a running daemon.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use ephysd::cli::remote::{self, config::ConfigAction, record::RecordAction, stream::StreamAction, RemoteOptions};
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
    /// List the acquisition hardware plugged in (Opal Kelly FrontPanel modules: Intan, Open
    /// Ephys, KonteX XDAQ gen 1), with serials, without opening it. Exits 1 if USB cannot be
    /// listed.
    Devices {
        /// A JSON array, for scripts.
        #[arg(long)]
        json: bool,
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
    /// Show what the running daemon is doing: device, sample rate, streaming, recording,
    /// ports. Exits 1 if the daemon answers an error, 3 if it cannot be reached.
    Status {
        #[command(flatten)]
        remote: RemoteOptions,
    },
    /// Start or stop streaming on the running daemon.
    Stream {
        #[command(subcommand)]
        action: StreamAction,
        #[command(flatten)]
        remote: RemoteOptions,
    },
    /// Start or stop recording on the running daemon.
    Record {
        #[command(subcommand)]
        action: RecordAction,
        #[command(flatten)]
        remote: RemoteOptions,
    },
    /// Read or change the running daemon's recording and core settings.
    Config {
        #[command(subcommand)]
        action: ConfigAction,
        #[command(flatten)]
        remote: RemoteOptions,
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
        Command::Devices { json } => ephysd::cli::devices::run(json),
        Command::Inspect { files, json } => ephysd::cli::inspect::run(&files, json),
        Command::Recover { files } => ephysd::cli::recover::run(&files),
        Command::Status { remote: options } => remote::status::run(&options),
        Command::Stream { action, remote: options } => remote::stream::run(&options, action),
        Command::Record { action, remote: options } => remote::record::run(&options, action),
        Command::Config { action, remote: options } => remote::config::run(&options, action),
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
