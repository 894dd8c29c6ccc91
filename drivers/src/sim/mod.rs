//! The built-in simulated rig: what ephysd streams when no hardware is attached.
//!
//! It stands in for a Rhythm-style board with an Intan headstage and produces realistic,
//! seeded, bit-reproducible data in the modes of Allego's SmartBox simulator
//! ([`SimMode`]): sortable units over noise and LFP, test sines, LFP, or broadband. Spike ground
//! truth is available for any frame range ([`SimulatedRig::ground_truth`]) without the rig
//! storing spikes, so detection and sorting can be scored against it during hour-long runs.
//!
//! Layout of the module, one job per file:
//! * `config` — [`SimMode`], [`SimConfig`] and validation;
//! * `rng` — the deterministic generator everything draws from;
//! * `noise`, `lfp`, `sine` — the dense background signals, precomputed into tables;
//! * `units` — the unit population and waveform templates; `firing` — per-epoch spike trains;
//! * `spikes` — sparse spike rendering; `ground_truth` — regenerating the embedded spikes;
//! * `base` — the per-sample hot loop; `convert` — vectorisable float→int rounding;
//! * `board` — aux, analog and digital streams;
//! * `clock` — real-time pacing; `rig` — [`SimulatedRig`], the [`Source`](crate::Source).

mod base;
mod board;
mod clock;
mod config;
mod convert;
mod firing;
mod ground_truth;
mod lfp;
mod noise;
mod rig;
mod rng;
mod sine;
mod spikes;
mod units;

pub use config::{canonical_sample_rate, SimConfig, SimConfigError, SimMode, INTAN_SAMPLE_RATES};
pub use ground_truth::GroundTruthSpike;
pub use rig::{SimulatedRig, RECORDING_NOISE_RMS_UV, SINE_NOISE_RMS_UV};
pub use units::{UnitInfo, UnitWaveform};
