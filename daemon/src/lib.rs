//! ephysd: an acquisition daemon for electrophysiology rigs.
//!
//! Read top-down from [`daemon::run`]: configuration, logging, the acquisition thread, the
//! engine (device, streaming and recording), the gRPC services, then the signal loop until a
//! stop. The real-time path itself is the `ephysd-pipeline` crate; this crate is the shell
//! around it.

pub mod cli;
pub mod config;
pub mod daemon;
pub mod engine;
pub mod grpc;
pub mod hardware_id;
pub mod kpi;
pub mod logging;
pub mod notify;
pub mod probe_map;
pub mod processing;
pub mod recorder;
pub mod replay;
pub mod signals;

/// The daemon's own version (Cargo package version).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The Allego API level this daemon implements, reported by `GetVersion`; clients enable
/// features by comparing it.
pub const ALLEGO_API_VERSION: &str = "5.7.0";
