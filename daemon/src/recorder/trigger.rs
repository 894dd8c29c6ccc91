//! Digital triggers: which frames a triggered recording keeps.
//!
//! A trigger is a digital line (an input or an output of the board); while any line that
//! applies to a file is high, the file records, and each rising edge starts a new file. The
//! gate works on the frames' own digital words, so it is frame-exact whatever the block size.

use std::fmt;

/// A digital line of the board.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum DigitalLine {
    /// Digital input `n` (0..16).
    In(u8),
    /// Digital output `n` (0..16).
    Out(u8),
}

impl fmt::Display for DigitalLine {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DigitalLine::In(n) => write!(f, "DIN {n}"),
            DigitalLine::Out(n) => write!(f, "DOUT {n}"),
        }
    }
}

/// A line that gates recording, for every file or for one port's files.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Trigger {
    /// The line.
    pub line: DigitalLine,
    /// The port whose files it gates (split recordings), or `None` for every file.
    pub port: Option<usize>,
}

/// The lines gating one file: high on any of them means record. Checked per frame with two
/// masks, so it costs nothing on the recorder thread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Gate {
    inputs: u16,
    outputs: u16,
}

impl Gate {
    /// The gate of the file of `port` (`None`: the one file of an unsplit recording) under
    /// `triggers`; `None` if no trigger applies (the file records all the time).
    pub fn for_port(triggers: &[Trigger], port: Option<usize>) -> Option<Gate> {
        let mut gate = Gate::default();
        for t in triggers.iter().filter(|t| t.port.is_none() || port.is_none() || t.port == port) {
            match t.line {
                DigitalLine::In(n) => gate.inputs |= 1 << n,
                DigitalLine::Out(n) => gate.outputs |= 1 << n,
            }
        }
        (gate != Gate::default()).then_some(gate)
    }

    /// Whether a frame with these digital words is to be recorded.
    #[inline]
    pub fn is_open(&self, digital_in: u16, digital_out: u16) -> bool {
        digital_in & self.inputs != 0 || digital_out & self.outputs != 0
    }
}

/// One stretch of rows of a block that a gate keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Run {
    /// First row kept.
    pub start: usize,
    /// One past the last row kept.
    pub end: usize,
    /// The run starts on a rising edge: it begins a new file.
    pub opens: bool,
    /// The run ends on a falling edge: its file is complete.
    pub closes: bool,
}

/// Fills `runs` with the stretches of the block (its digital words) that `gate` keeps, given
/// whether the gate was open at the end of the previous block; returns whether it is open at
/// the end of this one.
pub fn open_runs(gate: &Gate, digital_in: &[u16], digital_out: &[u16], was_open: bool, runs: &mut Vec<Run>) -> bool {
    runs.clear();
    let (mut open, mut start, mut opens) = (was_open, 0, false);
    for (i, (&din, &dout)) in digital_in.iter().zip(digital_out).enumerate() {
        let now = gate.is_open(din, dout);
        if now && !open {
            (start, opens) = (i, true);
        } else if !now && open {
            runs.push(Run { start, end: i, opens, closes: true });
            opens = false;
        }
        open = now;
    }
    if open {
        runs.push(Run { start, end: digital_in.len(), opens, closes: false });
    }
    open
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_gate_opens_on_any_of_its_lines_and_only_its_lines() {
        let triggers =
            [Trigger { line: DigitalLine::In(0), port: None }, Trigger { line: DigitalLine::Out(3), port: Some(1) }];
        let all = Gate::for_port(&triggers, Some(0)).unwrap();
        assert!(all.is_open(1, 0) && !all.is_open(0, 1 << 3) && !all.is_open(2, 0));
        let b = Gate::for_port(&triggers, Some(1)).unwrap();
        assert!(b.is_open(1, 0) && b.is_open(0, 1 << 3));
        assert!(Gate::for_port(&[], None).is_none());
        assert_eq!(DigitalLine::Out(3).to_string(), "DOUT 3");
    }

    #[test]
    fn runs_follow_the_edges_across_blocks() {
        let gate = Gate::for_port(&[Trigger { line: DigitalLine::In(1), port: None }], None).unwrap();
        let out = [0u16; 8];
        let mut runs = Vec::new();
        // Low, high from row 2 to 4, high again from 6 to the end of the block.
        let open = open_runs(&gate, &[0, 0, 2, 2, 0, 0, 2, 2], &out, false, &mut runs);
        assert!(open);
        assert_eq!(
            runs,
            [Run { start: 2, end: 4, opens: true, closes: true }, Run { start: 6, end: 8, opens: true, closes: false }]
        );
        // The next block continues the open file, then closes it.
        let open = open_runs(&gate, &[2, 3, 0, 0, 0, 0, 0, 0], &out, open, &mut runs);
        assert!(!open);
        assert_eq!(runs, [Run { start: 0, end: 2, opens: false, closes: true }]);
        // All high: one run carrying on; all low: none.
        assert!(open_runs(&gate, &[2; 8], &out, true, &mut runs));
        assert_eq!(runs, [Run { start: 0, end: 8, opens: false, closes: false }]);
        assert!(!open_runs(&gate, &[0; 8], &out, false, &mut runs));
        assert!(runs.is_empty());
    }
}
