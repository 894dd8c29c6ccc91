//! The pure real-time core: no I/O, no async, no allocation on the hot path.
//!
//! Everything here compiles and tests alone; the shell around it (threads, files, gRPC,
//! signals) lives in the sibling modules.

pub mod cache;
pub mod counters;
pub mod watchdog;

pub use cache::{CacheReader, PrimaryCache, ReadOutcome};
pub use counters::{CounterSnapshot, PipelineCounters};
pub use watchdog::WatchdogGate;
