//! Steps that combine channels within a frame: common average referencing and subtracting a
//! reference channel (Allego's virtual and paired references).
//!
//! Unlike filters these mix channels, so they run frame by frame in the order they were added,
//! each seeing the frame as the previous one left it.

use std::ops::Range;

/// Channels a step applies to. A contiguous ascending list is kept as a range, so the common
/// case (every channel, or one probe's block of channels) runs over a slice and vectorises.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Selection {
    Range(Range<usize>),
    List(Vec<usize>),
}

impl Selection {
    /// `channels`, already checked to be in range and distinct.
    pub(crate) fn new(channels: &[usize]) -> Selection {
        let contiguous = channels.windows(2).all(|w| w[1] == w[0] + 1);
        match channels.first() {
            Some(&first) if contiguous => Selection::Range(first..first + channels.len()),
            Some(_) => Selection::List(channels.to_vec()),
            None => Selection::Range(0..0),
        }
    }

    fn len(&self) -> usize {
        match self {
            Selection::Range(r) => r.len(),
            Selection::List(l) => l.len(),
        }
    }

    fn sum(&self, frame: &[f32]) -> f32 {
        match self {
            Selection::Range(r) => sum(&frame[r.clone()]),
            Selection::List(l) => l.iter().map(|&c| frame[c]).sum(),
        }
    }

    fn subtract(&self, frame: &mut [f32], v: f32) {
        match self {
            Selection::Range(r) => frame[r.clone()].iter_mut().for_each(|x| *x -= v),
            Selection::List(l) => l.iter().for_each(|&c| frame[c] -= v),
        }
    }
}

/// One channel-mixing step.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum MixOp {
    /// Subtract the mean of `channels` from each of them.
    CommonAverage { channels: Selection, inverse_count: f32 },
    /// Subtract channel `reference`, as it was before this step, from each target.
    Reference { reference: usize, targets: Selection },
}

impl MixOp {
    pub(crate) fn common_average(channels: Selection) -> MixOp {
        let inverse_count = 1.0 / channels.len().max(1) as f32;
        MixOp::CommonAverage { channels, inverse_count }
    }
}

/// Applies `ops` in order to one frame.
pub(crate) fn apply(ops: &[MixOp], frame: &mut [f32]) {
    for op in ops {
        match op {
            MixOp::CommonAverage { channels, inverse_count } => {
                let mean = channels.sum(frame) * inverse_count;
                channels.subtract(frame, mean);
            }
            MixOp::Reference { reference, targets } => {
                let r = frame[*reference];
                targets.subtract(frame, r);
            }
        }
    }
}

/// Sum with eight running partial sums: a single running sum is a chain of dependent adds the
/// compiler may not reorder, eight independent ones vectorise.
fn sum(x: &[f32]) -> f32 {
    let mut acc = [0.0f32; 8];
    let chunks = x.chunks_exact(8);
    let tail: f32 = chunks.remainder().iter().sum();
    for c in chunks {
        for (a, v) in acc.iter_mut().zip(c) {
            *a += v;
        }
    }
    acc.iter().sum::<f32>() + tail
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_contiguous_ascending_list_becomes_a_range() {
        assert_eq!(Selection::new(&[3, 4, 5]), Selection::Range(3..6));
        assert_eq!(Selection::new(&[5, 4]), Selection::List(vec![5, 4]));
        assert_eq!(Selection::new(&[]), Selection::Range(0..0));
    }

    #[test]
    fn the_partial_sums_add_up() {
        let x: Vec<f32> = (1..=21).map(|v| v as f32).collect();
        assert_eq!(sum(&x), 231.0);
        assert_eq!(sum(&[]), 0.0);
    }

    #[test]
    fn a_reference_is_read_before_it_is_subtracted_from_itself() {
        let mut frame = [10.0, 3.0, 5.0];
        apply(&[MixOp::Reference { reference: 1, targets: Selection::new(&[0, 1, 2]) }], &mut frame);
        assert_eq!(frame, [7.0, 0.0, 2.0]);
    }
}
