//! Commands of the `ephysd` binary besides `run`: they parse nothing beyond their own
//! arguments (clap does that in `main.rs`), do their one job, and return the exit code with
//! everything said on stdout or stderr. `inspect` and `recover` work on files; [`remote`]
//! holds the commands that drive a running daemon over its gRPC services.

pub mod devices;
pub mod inspect;
pub mod recover;
pub mod remote;
