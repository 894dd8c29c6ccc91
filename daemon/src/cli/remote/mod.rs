//! `ephysd status`, `stream`, `record` and `config`: a command-line client of the daemon's own
//! gRPC services, for an operator on the rig PC (or over SSH) who has no Python.
//!
//! Every command is a few Allego calls on the core port, made the way any other client makes
//! them (TLS and the bearer token included): the command line can do nothing a client could
//! not, and what it shows is what clients see.
//!
//! [`connect`] decides where and how to dial from the options and the configuration;
//! [`client`] makes the calls with the token and the time limit; [`error`] says what went
//! wrong and picks the exit code; each command has its module ([`status`], [`stream`],
//! [`record`], [`config`]), and the keys `config` knows are in [`keys`].

pub mod client;
pub mod config;
pub mod connect;
pub mod error;
pub mod keys;
pub mod record;
pub mod status;
pub mod stream;

use std::future::Future;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

pub use client::Remote;
pub use error::RemoteError;

/// Exit code: the command did what it was asked.
pub const EXIT_OK: u8 = 0;
/// Exit code: the daemon answered with an error (refused or failed the request); the gRPC
/// code and the daemon's message are printed.
pub const EXIT_DAEMON_ERROR: u8 = 1;
/// Exit code: the command line itself is wrong (clap's code for usage errors, also used for
/// unknown keys, bad values, unreadable TLS or token files, a bad configuration), so nothing
/// was sent.
pub const EXIT_USAGE: u8 = 2;
/// Exit code: the daemon could not be reached or did not answer in time (a call cut off
/// midway may or may not have taken effect: check with `ephysd status`).
pub const EXIT_UNREACHABLE: u8 = 3;

/// How to reach the daemon; shared by every remote command (and accepted after its
/// subcommand, as in `ephysd stream start --json`).
#[derive(Debug, Clone, clap::Args)]
pub struct RemoteOptions {
    /// The daemon's core port, HOST[:PORT]. Default: server.bind and server.base_port of the
    /// configuration (127.0.0.1 when the bind is a wildcard).
    #[arg(long, value_name = "HOST[:PORT]", global = true)]
    pub addr: Option<String>,
    /// Configuration file the defaults come from (as for `run`; `EPHYSD_*` apply too).
    #[arg(long, value_name = "PATH", global = true)]
    pub config: Option<PathBuf>,
    /// CA certificate (PEM) to trust for TLS. Default: server.tls_cert of the configuration.
    #[arg(long, value_name = "PEM", global = true)]
    pub tls_ca: Option<PathBuf>,
    /// Server name the daemon's certificate must carry. Default: the host of --addr.
    #[arg(long, value_name = "NAME", global = true)]
    pub tls_name: Option<String>,
    /// File whose first line is the bearer token. Default: server.token_file of the
    /// configuration.
    #[arg(long, value_name = "PATH", global = true)]
    pub token_file: Option<PathBuf>,
    /// Seconds to wait for the connection and for each answer.
    #[arg(long, value_name = "SECONDS", default_value = "10", value_parser = parse_timeout, global = true)]
    pub timeout: Duration,
    /// One JSON object on stdout, errors included, for scripts.
    #[arg(long, global = true)]
    pub json: bool,
}

/// `--timeout`: positive seconds, fractions allowed.
fn parse_timeout(text: &str) -> Result<Duration, String> {
    let seconds: f64 = text.trim().parse().map_err(|_| format!("{text:?} is not a number of seconds"))?;
    if !(seconds.is_finite() && seconds > 0.0 && seconds <= 86_400.0) {
        return Err(format!("{text}: allowed more than 0 and at most 86400 seconds"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// What a command says when it succeeds: a few lines for a person, one object for a script.
#[derive(Debug, Clone, PartialEq)]
pub struct Output {
    /// Lines for a person (each ends with a newline).
    pub text: String,
    /// The same for a script.
    pub json: serde_json::Value,
}

/// Connects as `options` say, runs `command` and reports what it returned; the exit code
/// says how it went.
pub fn execute<F, Fut>(options: &RemoteOptions, command: F) -> ExitCode
where
    F: FnOnce(Remote) -> Fut,
    Fut: Future<Output = Result<Output, RemoteError>>,
{
    let result = connect::Target::resolve(options).and_then(|target| {
        let runtime =
            tokio::runtime::Builder::new_current_thread().enable_all().build().map_err(RemoteError::Runtime)?;
        runtime.block_on(async move {
            let remote = connect::connect(&target).await?;
            command(remote).await
        })
    });
    report(options.json, result)
}

/// Prints the output or the error the way `--json` asks and returns the exit code.
pub fn report(json: bool, result: Result<Output, RemoteError>) -> ExitCode {
    match result {
        Ok(output) => {
            if json {
                println!("{}", output.json);
            } else {
                print!("{}", output.text);
            }
            ExitCode::from(EXIT_OK)
        }
        Err(e) => {
            if json {
                println!("{}", e.to_json());
            } else {
                eprintln!("ephysd: {e}");
            }
            ExitCode::from(e.exit_code())
        }
    }
}
