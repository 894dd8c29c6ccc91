//! Changing a running detector's parameters from the control plane.
//!
//! The control plane validates a change, applies it to its own copy of the whole table and
//! sends the new table to the stage through a bounded channel; the stage picks it up at its
//! next block boundary. Moving a `Vec` through a preallocated channel slot allocates nothing,
//! and the table the stage replaces is sent back to the control plane to be freed there, so
//! the acquisition thread neither allocates nor frees. Tables supersede each other: if the
//! stage is not taking them (no stream running), the control plane drops the stalest queued
//! table itself, and the newest always arrives last.

use std::sync::{Arc, Mutex, PoisonError};

use crossbeam_channel::{Receiver, Sender, TrySendError};

use super::params::{DetectParams, DetectParamsError};
use super::shared::DetectorShared;

/// Tables that can wait for the stage at once.
const QUEUED_TABLES: usize = 2;

/// The control plane's handle on one [`DetectorStage`](super::DetectorStage).
pub struct DetectorControl {
    sample_rate_hz: f64,
    /// The table as the control plane last set it.
    table: Mutex<Vec<DetectParams>>,
    to_stage: Sender<Vec<DetectParams>>,
    /// A second receiver on the same channel, to drop a stale table when the channel is full.
    stale: Receiver<Vec<DetectParams>>,
    /// Tables the stage replaced, freed here.
    returned: Receiver<Vec<DetectParams>>,
    shared: Arc<DetectorShared>,
}

/// The stage's ends of the two channels.
pub(crate) struct StageEnds {
    pub updates: Receiver<Vec<DetectParams>>,
    pub returns: Sender<Vec<DetectParams>>,
}

impl DetectorControl {
    pub(crate) fn new(sample_rate_hz: f64, table: Vec<DetectParams>, shared: Arc<DetectorShared>) -> (Self, StageEnds) {
        let (to_stage, updates) = crossbeam_channel::bounded(QUEUED_TABLES);
        // The stage returns at most one table per table it takes, and it can take at most
        // `QUEUED_TABLES` between two drains (every update drains first), so its sends never
        // find this channel full.
        let (returns, returned) = crossbeam_channel::bounded(QUEUED_TABLES + 1);
        let control = DetectorControl {
            sample_rate_hz,
            table: Mutex::new(table),
            to_stage,
            stale: updates.clone(),
            returned,
            shared,
        };
        (control, StageEnds { updates, returns })
    }

    /// Changes the parameters of some channels: `(channel, params)` pairs, applied in order.
    /// Everything is validated first (an error names the channel and the field, and nothing
    /// changes); the stage applies the new table at its next block boundary. With no stream
    /// running the change is kept here and [`DetectorControl::params`] shows it.
    pub fn update(&self, changes: Vec<(usize, DetectParams)>) -> Result<(), DetectParamsError> {
        let mut table = self.table.lock().unwrap_or_else(PoisonError::into_inner);
        for (channel, params) in &changes {
            if *channel >= table.len() {
                return Err(DetectParamsError::new(
                    "channel",
                    channel,
                    format!("0 to {}", table.len().saturating_sub(1)),
                ));
            }
            params.validate(self.sample_rate_hz).map_err(|e| e.on_channel(*channel))?;
        }
        for (channel, params) in changes {
            table[channel] = params;
        }
        while self.returned.try_recv().is_ok() {}
        let mut next = table.clone();
        loop {
            match self.to_stage.try_send(next) {
                Ok(()) | Err(TrySendError::Disconnected(_)) => return Ok(()),
                Err(TrySendError::Full(back)) => {
                    next = back;
                    // Superseded by the table being sent; may race the stage taking it, which
                    // is as good.
                    let _ = self.stale.try_recv();
                }
            }
        }
    }

    /// The whole table, one entry per channel, as the control plane last set it.
    pub fn params(&self) -> Vec<DetectParams> {
        self.table.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// The detector's live read-outs.
    pub fn shared(&self) -> Arc<DetectorShared> {
        Arc::clone(&self.shared)
    }
}
