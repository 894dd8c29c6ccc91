//! The built-in simulated device: what ephysd streams when no hardware is attached.
//!
//! It stands in for a Rhythm-style board with Intan headstages and produces realistic,
//! seeded, bit-reproducible data in the modes of Allego's SmartBox simulator
//! ([`SimMode`]): sortable units over noise and LFP, test sines, LFP, or broadband. Spike ground
//! truth is available for any frame range ([`SimulatedSource::ground_truth`]) without the device
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
//! * `clock` — real-time pacing; `source` — [`SimulatedSource`], the [`Source`](crate::Source);
//! * `outputs` — digital and analog outputs and stimulation, as they show in the stream;
//! * `device` — [`SimulatedDevice`]: the description, streams and [`Control`](crate::Control).

mod base;
mod board;
mod clock;
mod config;
mod convert;
mod device;
mod firing;
mod ground_truth;
mod lfp;
mod noise;
mod outputs;
mod rng;
mod sine;
mod source;
mod spikes;
mod units;

pub use config::{SimConfig, SimConfigError, SimMode};
pub use device::{SimulatedDevice, CHANNELS_PER_PORT, MEDIAN_IMPEDANCE_OHMS};
pub use ground_truth::GroundTruthSpike;
pub use outputs::{ANALOG_OUT_CHANNELS, ARTIFACT_UV_PER_UA, STIM_PLAYING_CAPACITY, STIM_QUEUE_CAPACITY};
pub use source::{SimulatedSource, RECORDING_NOISE_RMS_UV, SINE_NOISE_RMS_UV};
pub use units::{UnitInfo, UnitWaveform};
