//! A filter plan: what the filter stage does to each block, built on the control plane.
//!
//! A plan is a list of steps in the order they were added: filters (a cascade of sections on
//! some channels), common average references and channel references. Consecutive filters are
//! compiled into one [`Bank`]: a filter acts on each channel alone, so filters added one after
//! the other (a highpass on every channel, then a notch on some) become one cascade per
//! channel run in a single pass. Referencing steps mix channels and so separate banks.
//!
//! Everything is allocated when the plan is built; running it allocates nothing.

use super::bank::Bank;
use super::mix::{self, MixOp, Selection};
use super::sos::Sos;
use crate::stage::scale_units;

/// Why a step cannot be added to a plan.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PlanError {
    /// A channel index is not below the plan's channel count.
    #[error("channel {channel} must be below the plan's channel count {channels}")]
    ChannelOutOfRange {
        /// The index given.
        channel: usize,
        /// The plan's channel count.
        channels: usize,
    },
    /// A channel appears twice in one step's list.
    #[error("channel {channel} is listed more than once")]
    DuplicateChannel {
        /// The index repeated.
        channel: usize,
    },
}

/// One step of a plan.
#[derive(Debug, Clone)]
enum Step {
    /// Consecutive filters: each channel's sections in order (empty: not filtered), and the
    /// bank compiled from them.
    Filter { cascades: Vec<Vec<[f64; 6]>>, bank: Bank },
    /// Consecutive referencing steps, applied frame by frame.
    Mix(Vec<MixOp>),
}

/// The processing of one stream's amplifier channels: filters and references, in the order
/// added. Channels no step names pass unchanged. For instance a common average reference over
/// every channel followed by a highpass on every channel:
/// `plan.common_average(&all)?.filter(&all, &design(&highpass, 30_000.0)?)?`.
#[derive(Debug, Clone)]
pub struct FilterPlan {
    channels: usize,
    steps: Vec<Step>,
    /// One frame, for working out each bank's input when the plan replaces another.
    scratch: Vec<f32>,
}

impl FilterPlan {
    /// An empty plan (every channel passes unchanged) for frames of `channels` amplifier
    /// channels.
    pub fn new(channels: usize) -> FilterPlan {
        FilterPlan { channels, steps: Vec::new(), scratch: vec![0.0; channels] }
    }

    /// Amplifier channels per frame.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// Filters `channels` with `sos`, after whatever the plan already does to them.
    pub fn filter(&mut self, channels: &[usize], sos: &Sos) -> Result<&mut Self, PlanError> {
        self.check(channels)?;
        if !matches!(self.steps.last(), Some(Step::Filter { .. })) {
            let cascades = vec![Vec::new(); self.channels];
            self.steps.push(Step::Filter { bank: Bank::new(&cascades), cascades });
        }
        let Some(Step::Filter { cascades, bank }) = self.steps.last_mut() else { unreachable!("pushed above") };
        for &c in channels {
            cascades[c].extend_from_slice(sos.sections());
        }
        *bank = Bank::new(cascades);
        Ok(self)
    }

    /// Subtracts the mean of `channels`, frame by frame, from each of them (common average
    /// reference).
    pub fn common_average(&mut self, channels: &[usize]) -> Result<&mut Self, PlanError> {
        self.check(channels)?;
        self.push_mix(MixOp::common_average(Selection::new(channels)));
        Ok(self)
    }

    /// Subtracts channel `reference` from each of `targets`, frame by frame; the reference's
    /// value is taken before the subtraction, so a reference among its own targets becomes 0.
    pub fn reference(&mut self, reference: usize, targets: &[usize]) -> Result<&mut Self, PlanError> {
        self.check(&[reference])?;
        self.check(targets)?;
        self.push_mix(MixOp::Reference { reference, targets: Selection::new(targets) });
        Ok(self)
    }

    /// Whether the plan leaves every channel as it is (no filter, reference or average).
    pub fn is_identity(&self) -> bool {
        self.steps.is_empty()
    }

    /// Runs the plan over `samples` (frame-major, [`channels`](Self::channels) per frame, µV)
    /// in place, continuing from the state the previous call left. A trailing partial frame is
    /// left alone. Allocates nothing: this is what the filter stage runs for each block.
    pub fn process(&mut self, samples: &mut [f32]) {
        let channels = self.channels;
        if channels == 0 {
            return;
        }
        let whole = samples.len() / channels * channels;
        run_steps(&mut self.steps, &mut samples[..whole], channels);
    }

    /// Runs the plan over `units` (16-bit samples, frame-major) times `scale`, writing the
    /// result into `samples`: what converting them into `samples` and then calling
    /// [`process`](Self::process) gives, bit for bit, with the conversion done as the first
    /// filter loads its input rather than in a pass of its own. Allocates nothing.
    pub fn process_units(&mut self, units: &[i16], scale: f32, samples: &mut [f32]) {
        let channels = self.channels;
        if channels == 0 {
            return;
        }
        let whole = samples.len().min(units.len()) / channels * channels;
        let (units, samples) = (&units[..whole], &mut samples[..whole]);
        let rest = match self.steps.first_mut() {
            Some(Step::Filter { bank, .. }) => {
                bank.process_units(units, scale, samples, channels);
                1
            }
            _ => {
                scale_units(samples, units, scale);
                0
            }
        };
        run_steps(&mut self.steps[rest..], samples, channels);
    }

    /// Prepares this plan to take over from `old` after a frame whose input was `last_frame`:
    /// each bank keeps the state of channels whose cascade is the same as in the bank at the
    /// same position of `old`, and starts the others at rest for their current input (the
    /// last frame as the steps before the bank transform it). Allocates nothing.
    pub(crate) fn prime(&mut self, old: &FilterPlan, last_frame: &[f32]) {
        let frame = &mut self.scratch;
        frame.copy_from_slice(last_frame);
        let mut old_banks = old.steps.iter().filter_map(|s| match s {
            Step::Filter { bank, .. } => Some(bank),
            Step::Mix(_) => None,
        });
        for step in &mut self.steps {
            match step {
                Step::Filter { bank, .. } => bank.prime(old_banks.next(), frame),
                Step::Mix(ops) => mix::apply(ops, frame),
            }
        }
    }

    fn push_mix(&mut self, op: MixOp) {
        match self.steps.last_mut() {
            Some(Step::Mix(ops)) => ops.push(op),
            _ => self.steps.push(Step::Mix(vec![op])),
        }
    }

    /// Every channel in range, none twice.
    fn check(&self, channels: &[usize]) -> Result<(), PlanError> {
        let mut seen = vec![false; self.channels];
        for &channel in channels {
            let slot =
                seen.get_mut(channel).ok_or(PlanError::ChannelOutOfRange { channel, channels: self.channels })?;
            if std::mem::replace(slot, true) {
                return Err(PlanError::DuplicateChannel { channel });
            }
        }
        Ok(())
    }
}

/// Runs `steps` in order over whole frames of `samples`, in place.
fn run_steps(steps: &mut [Step], samples: &mut [f32], channels: usize) {
    for step in steps {
        match step {
            Step::Filter { bank, .. } => bank.process(samples, channels),
            Step::Mix(ops) => samples.chunks_exact_mut(channels).for_each(|frame| mix::apply(ops, frame)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sos() -> Sos {
        Sos::new(vec![[0.5, 0.5, 0.0, 1.0, -0.2, 0.0]]).unwrap()
    }

    #[test]
    fn consecutive_filters_share_one_bank_and_references_separate_them() {
        let mut plan = FilterPlan::new(4);
        plan.filter(&[0, 1], &sos()).unwrap().filter(&[1, 2], &sos()).unwrap();
        plan.reference(0, &[1]).unwrap().common_average(&[0, 1, 2, 3]).unwrap();
        plan.filter(&[3], &sos()).unwrap();
        assert_eq!(plan.steps.len(), 3);
        let Step::Filter { cascades, .. } = &plan.steps[0] else { panic!("a filter first") };
        assert_eq!(cascades.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 1, 0]);
        assert!(matches!(&plan.steps[1], Step::Mix(ops) if ops.len() == 2));
    }

    /// A block of 16-bit samples spread over the whole range, `channels` wide.
    fn units(channels: usize, frames: usize) -> Vec<i16> {
        (0..channels * frames).map(|i| (i.wrapping_mul(7919) % 65536) as u16 as i16).collect()
    }

    #[test]
    fn a_plan_run_on_units_gives_what_converting_first_gives_bit_for_bit() {
        // 37 channels: a group of 32 lanes and a partial one. The first bank leaves channels at
        // both ends alone, a reference and a second bank follow; another plan starts with a mix.
        let channels = 37;
        let middle: Vec<usize> = (3..35).collect();
        let mut filter_first = FilterPlan::new(channels);
        filter_first.filter(&middle, &sos()).unwrap().reference(0, &[5, 6]).unwrap().filter(&[1, 36], &sos()).unwrap();
        let mut mix_first = FilterPlan::new(channels);
        mix_first.common_average(&middle).unwrap().filter(&[2, 3], &sos()).unwrap();
        let scale = 0.195f32;
        for mut plan in [filter_first, mix_first] {
            let mut twin = plan.clone();
            // Two blocks: the second continues from the state the first left.
            for block in [units(channels, 130), units(channels, 7)] {
                let mut fused = vec![f32::NAN; block.len()];
                plan.process_units(&block, scale, &mut fused);
                let mut converted: Vec<f32> = block.iter().map(|&u| f32::from(u) * scale).collect();
                twin.process(&mut converted);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&fused), bits(&converted));
            }
        }
    }

    #[test]
    fn errors_name_the_channel_and_the_count() {
        let mut plan = FilterPlan::new(4);
        let e = plan.filter(&[0, 4], &sos()).unwrap_err();
        assert_eq!(e, PlanError::ChannelOutOfRange { channel: 4, channels: 4 });
        assert_eq!(e.to_string(), "channel 4 must be below the plan's channel count 4");
        assert_eq!(plan.reference(7, &[0]).unwrap_err(), PlanError::ChannelOutOfRange { channel: 7, channels: 4 });
        assert_eq!(plan.common_average(&[1, 2, 1]).unwrap_err(), PlanError::DuplicateChannel { channel: 1 });
        assert!(plan.steps.is_empty());
    }
}
