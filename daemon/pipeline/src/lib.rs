//! The real-time path of ephysd, and nothing else.
//!
//! Everything that touches a sample between the device and its consumers lives here: the
//! acquisition thread ([`acquisition`]) reads a block from the device, runs the processing
//! [`stage`]s over it, and publishes it into the [`cache`] (the primary cache, a lock-free ring
//! of the last seconds of signal); stages emit events (spikes, later stimulations) into
//! [`events`] rings. Consumers (the recorder, gRPC snapshots, closed-loop streams) read both at
//! their own pace and are told exactly what they missed. [`counters`] make every loss visible,
//! [`watchdog`] decides whether the thread is alive, and [`placement`] pins it and raises its
//! priority.
//!
//! This crate depends on std, the drivers and small real-time helpers only. It never depends
//! on an async runtime, gRPC, protobuf or a file format: the compiler keeps those out of the
//! real-time path, and `tests/dependencies.rs` keeps them out of this crate's dependency tree.
//!
//! # Threads
//!
//! | thread | runs | may |
//! |---|---|---|
//! | acquisition (`ephysd-acq`, one per daemon) | [`acquisition`]: source → [`stage::StageChain`] → [`cache::CacheWriter`] | never allocate, lock, block on a consumer or log per block |
//! | consumers (recorder, snapshots, streams) | [`cache::CacheReader`], [`events::EventReader`] | fall behind: they are told how much they lost, the writer never waits |
//! | control plane | builds a [`acquisition::StreamPlan`], reads [`counters`], checks the [`watchdog`] | anything; nothing here waits on it |

#![deny(missing_docs)]

pub mod acquisition;
pub mod cache;
pub mod counters;
pub mod detect;
pub mod dsp;
pub mod events;
pub mod placement;
mod prefault;
mod ring;
mod simd;
pub mod snapshot;
pub mod stage;
pub mod tap;
pub mod watchdog;

pub use acquisition::{Acquisition, Pacing, StreamEnded, StreamId, StreamPlan};
pub use cache::{CacheReader, CacheSlots, CacheWriter, PrimaryCache, ReadOutcome};
pub use counters::{CounterSnapshot, PipelineCounters};
pub use events::{Event, EventReader, EventRing, EventWriter, EventsRead};
pub use placement::{available_cores, PlacementOutcome, ThreadPlacement};
pub use snapshot::{amplifier_rows, snapshot, BufferPool, ChannelPick, FrameSpan, Matrix, Snapshot, SnapshotError};
pub use stage::{SignalBlock, Stage, StageBlock, StageChain};
pub use tap::{FilteredCache, FilteredTap};
pub use watchdog::{Liveness, WatchdogGate};
