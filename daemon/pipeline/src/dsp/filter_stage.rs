//! The filter stage on the acquisition thread, and its handle on the control plane.
//!
//! Plans are built and compiled on the control plane and handed over whole through a bounded
//! channel; at a block boundary the stage only sets the new plan's starting state (no
//! allocation) and swaps it in. The plan it replaces goes back through a second channel, so
//! its memory is freed on the control plane too: freeing can take the allocator's locks,
//! which the acquisition thread must never wait on.
//!
//! Only the newest plan matters: if a plan is still waiting when another is handed over, the
//! waiting one is withdrawn and dropped unapplied (it is superseded, not an error).

use crossbeam_channel::{bounded, Receiver, Sender, TryRecvError, TrySendError};

use super::plan::FilterPlan;
use crate::stage::{scale_units, Stage, StageBlock, UV_PER_UNIT};

/// Old plans that may be in flight back to the control plane at once. Each
/// [`FilterControl::replace`] first collects those already returned, so at most two can
/// arrive before the next collection; the rest is margin.
const RETURNED_CAPACITY: usize = 4;

/// Why a plan was not handed to the stage.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReplaceError {
    /// The plan is for a different number of channels than the stream's.
    #[error("the plan has {got} channels but the stream has {expected}")]
    ChannelCount {
        /// The stream's amplifier channels.
        expected: usize,
        /// The plan's.
        got: usize,
    },
    /// The stage no longer exists (its stream ended).
    #[error("the filter stage has ended with its stream")]
    StageGone,
}

/// The channels of a block a filter stage works on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Lane {
    /// The amplifier channels (µV).
    Amplifier,
    /// The board's analog inputs (V).
    AnalogIn,
}

/// Runs a [`FilterPlan`] over each block's signal, in place.
///
/// Starts from zero state, as scipy's `sosfilt`. A replacement plan takes over at the next
/// block boundary from the steady state of each channel's last input (unchanged cascades keep
/// their state exactly), so changing a filter does not make the signal ring. A block whose
/// channel count differs from the plan's passes unchanged; [`FilterControl`] only accepts
/// plans for the stream's channel count, so that happens only if the stage was built for the
/// wrong stream.
pub struct FilterStage {
    name: String,
    /// Which channels of the block the plan's channels are.
    lane: Lane,
    plan: FilterPlan,
    /// The stage's input in the last frame it processed, for priming a replacement.
    last_frame: Vec<f32>,
    seen_a_frame: bool,
    incoming: Receiver<FilterPlan>,
    returned: Sender<FilterPlan>,
    /// An old plan the control plane could not take back yet; while it is here, no new plan
    /// is taken.
    retired: Option<FilterPlan>,
}

/// The control plane's handle on a running [`FilterStage`]: replaces its plan. Old plans come
/// back through it and are dropped here, on the next call or when the handle is dropped.
pub struct FilterControl {
    channels: usize,
    to_stage: Sender<FilterPlan>,
    /// The stage's end of `to_stage`, to withdraw a plan that is still waiting.
    waiting: Receiver<FilterPlan>,
    returned: Receiver<FilterPlan>,
}

impl FilterStage {
    /// A stage named `name` (for logs and status, e.g. `"stage-1 filter"`) running `plan`,
    /// and the handle that replaces its plan.
    pub fn new(name: &str, plan: FilterPlan) -> (FilterStage, FilterControl) {
        Self::on_lane(name, Lane::Amplifier, plan)
    }

    /// A stage filtering `lane`'s channels of each block (the plan has as many channels).
    pub fn on_lane(name: &str, lane: Lane, plan: FilterPlan) -> (FilterStage, FilterControl) {
        let (to_stage, incoming) = bounded(1);
        let (returned_tx, returned) = bounded(RETURNED_CAPACITY);
        let channels = plan.channels();
        let stage = FilterStage {
            name: name.to_owned(),
            lane,
            plan,
            last_frame: crate::prefault::prefaulted(channels, 0.0).into_vec(),
            seen_a_frame: false,
            incoming: incoming.clone(),
            returned: returned_tx,
            retired: None,
        };
        (stage, FilterControl { channels, to_stage, waiting: incoming, returned })
    }

    /// Swaps in a plan the control plane handed over, if any. Never blocks.
    fn take_new_plan(&mut self) {
        if let Some(old) = self.retired.take() {
            if let Err(e) = self.returned.try_send(old) {
                self.retired = Some(e.into_inner());
                return;
            }
        }
        let Ok(mut plan) = self.incoming.try_recv() else { return };
        if self.seen_a_frame {
            plan.prime(&self.plan, &self.last_frame);
        }
        let old = std::mem::replace(&mut self.plan, plan);
        if let Err(e) = self.returned.try_send(old) {
            self.retired = Some(e.into_inner());
        }
    }
}

impl Stage for FilterStage {
    fn name(&self) -> &str {
        &self.name
    }

    /// An amplifier filter converts the signal as it filters it (or, with an empty plan,
    /// leaves it alone); an analog-input filter does not touch the amplifier signal.
    fn takes_unconverted(&self) -> bool {
        true
    }

    fn process(&mut self, block: &mut StageBlock<'_>) {
        self.take_new_plan();
        let channels = self.plan.channels();
        let lane_channels = match self.lane {
            Lane::Amplifier => block.signal.channels(),
            Lane::AnalogIn => block.signal.analog_in_channels(),
        };
        if lane_channels != channels || block.signal.frames() == 0 || channels == 0 {
            return;
        }
        // An amplifier signal not converted yet is the raw block's samples: the plan converts
        // them as it runs (see `Stage::takes_unconverted`).
        let unconverted = self.lane == Lane::Amplifier && !block.signal.is_converted();
        if unconverted {
            let units = block.raw.amplifier_filled();
            scale_units(&mut self.last_frame, &units[units.len() - channels..], UV_PER_UNIT);
        } else {
            let input = match self.lane {
                Lane::Amplifier => block.signal.samples(),
                Lane::AnalogIn => block.signal.analog_in(),
            };
            self.last_frame.copy_from_slice(&input[input.len() - channels..]);
        }
        self.seen_a_frame = true;
        // An empty plan leaves the signal as it is, and untouched (see `SignalBlock::is_modified`).
        if self.plan.is_identity() {
            return;
        }
        match self.lane {
            Lane::Amplifier if unconverted => {
                self.plan.process_units(block.raw.amplifier_filled(), UV_PER_UNIT, block.signal.samples_to_overwrite())
            }
            Lane::Amplifier => self.plan.process(block.signal.samples_mut()),
            Lane::AnalogIn => self.plan.process(block.signal.analog_in_mut()),
        }
    }
}

impl FilterControl {
    /// Hands `plan` to the stage, which swaps it in at its next block boundary. Never blocks.
    /// A plan handed over earlier and not yet taken is superseded: withdrawn and dropped.
    pub fn replace(&self, mut plan: FilterPlan) -> Result<(), ReplaceError> {
        if plan.channels() != self.channels {
            return Err(ReplaceError::ChannelCount { expected: self.channels, got: plan.channels() });
        }
        if !self.collect() {
            return Err(ReplaceError::StageGone);
        }
        loop {
            while self.waiting.try_recv().is_ok() {}
            match self.to_stage.try_send(plan) {
                Ok(()) => return Ok(()),
                // Another thread handed over a plan meanwhile; this one is newer.
                Err(TrySendError::Full(p)) => plan = p,
                // Cannot happen: this handle holds a receiver.
                Err(TrySendError::Disconnected(_)) => return Err(ReplaceError::StageGone),
            }
        }
    }

    /// Drops the old plans the stage has handed back. Returns whether the stage still exists.
    pub fn collect(&self) -> bool {
        loop {
            match self.returned.try_recv() {
                Ok(old) => drop(old),
                Err(TryRecvError::Empty) => return true,
                Err(TryRecvError::Disconnected) => return false,
            }
        }
    }

    /// Amplifier channels of the stream the stage filters.
    pub fn channels(&self) -> usize {
        self.channels
    }
}

impl Drop for FilterControl {
    fn drop(&mut self) {
        self.collect();
    }
}
