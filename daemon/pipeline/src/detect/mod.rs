//! Spike detection on the acquisition thread.
//!
//! [`DetectorStage`] finds threshold crossings in the filtered signal of every amplifier
//! channel and pushes each as a [`Spike`] (crossing frame, channel, a 75-point snippet) into
//! an [`EventRing`](crate::events::EventRing). Levels are set per channel in µV or as
//! multiples of a robust noise estimate the detector tracks itself (MAD / 0.6745 over about
//! the last second, see [`NOISE_RING`]); the control plane changes them while the stream
//! runs through [`DetectorControl`], and reads noise, levels and counts through
//! [`DetectorShared`].
//!
//! | module | job |
//! |---|---|
//! | [`params`] | per-channel parameters and their validation |
//! | [`detector`] | the stage: the per-frame scan and the schedule of everything else |
//! | `channels` | parameters turned into per-channel level arrays; dead times |
//! | `noise` | MAD noise estimates from a decimated ring, refreshed round-robin |
//! | `history`, `pending` | the samples around a crossing, across blocks |
//! | `snippet` | raw samples → the 75-point snippet; peak and width |
//! | [`after_lobe`] | a large spike's filtered overshoot is not a second spike |
//! | [`control`], [`shared`] | the control plane's side |

pub mod after_lobe;
mod channels;
pub mod control;
pub mod detector;
mod history;
mod noise;
pub mod params;
mod pending;
pub mod shared;
mod snippet;
pub mod spike;

pub use after_lobe::{AFTER_LOBE_FRACTION, AFTER_LOBE_WINDOW_S};
pub use control::DetectorControl;
pub use detector::{DetectorStage, MAX_CHANNELS, MIN_PENDING, PENDING_PER_CHANNEL};
pub use noise::NOISE_RING;
pub use params::{DetectParams, DetectParamsError, Polarity, Threshold};
pub use shared::DetectorShared;
pub use snippet::SNIPPET_RATE_HZ;
pub use spike::{Spike, SNIPPET_PRE, SNIPPET_SAMPLES, UNSORTED};
