//! KPI: live signal-quality metrics of every amplifier channel, as radiens-core's
//! `get_kpi_metrics` and `get_kpi_status` read them.
//!
//! A thread of its own ([`worker`]) measures a short packet of the newest frames of the primary
//! cache every update period, with the spikes detected in it ([`packet`]), and blends each
//! packet into a running average over a lookback window ([`blend`]). Clients read either the
//! last packet or the average (`KPI_SVC_STREAM`), through a [`KpiHandle`] the engine keeps for
//! the daemon's lifetime and points at each stream's cache. [`settings`] are shared by every
//! client, as Allego's are. The wire side (requests, replies, codes) is `grpc::kpi`.
//!
//! Conventions, from radiens-core's documentation of `KpiMetric`: amplitudes in µV; a packet
//! without spikes on a channel has `SNR` NaN, `EVENT_RATE` 0, `EVENT_MIN` +inf and the other
//! event metrics -inf; before anything is measured the counts and duration are 0 and the rest
//! NaN. `SD` is the population standard deviation (numpy's `np.std`, `ddof = 0`); `NOISE_UV`
//! is the median absolute deviation from the packet's mean over 0.6745, and `NUM_PTS_ISI` the
//! number of samples it was taken from.

pub mod blend;
pub mod metric;
pub mod packet;
pub mod settings;
pub mod worker;

pub use metric::{KpiMetric, METRIC_COUNT};
pub use settings::{KpiSettings, SettingsError};
pub use worker::{KpiHandle, KpiStatus, KpiWorker, MetricsTable, PacketSpan};

/// A KPI request refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum KpiError {
    /// No stream is attached: there is nothing to measure.
    #[error("KPI metrics need a running stream: start streaming first")]
    NotStreaming,
    /// A channel beyond the stream's amplifier channels.
    #[error("channel {index} is not in the stream: it has {count} amplifier channels (allowed 0..{count})")]
    Channel {
        /// The channel asked for.
        index: usize,
        /// Amplifier channels of the stream.
        count: usize,
    },
    /// A setting out of range.
    #[error(transparent)]
    Settings(#[from] SettingsError),
    /// The thread could not be started.
    #[error("cannot start the KPI thread: {0}")]
    Thread(String),
}
