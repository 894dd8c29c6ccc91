//! What outlives one opened handle of the emulated board: whether it is plugged in, and which
//! one-shot faults have already fired (a board that came back is not unplugged again by the
//! same fault when it is reopened).

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::spec::Fault;

/// What the faults make of one frame on its way to USB.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FrameFate {
    Keep,
    /// Never reaches USB.
    Drop,
    /// Reaches USB with its magic number damaged.
    Corrupt,
    /// The board is gone: nothing more is produced.
    Stalled,
}

/// What [`World::frame_fate`] decided for a frame, and whether a stall begins with it.
#[derive(Debug, Clone, Copy)]
pub(crate) struct FaultOutcome {
    pub fate: FrameFate,
    /// `Some(until)`: the pipe stops moving data until `until` (`None`: for good).
    pub hold_pipe: Option<Option<Instant>>,
}

/// The emulated board's presence on the bus and its fired faults. Shared by the provider
/// and every panel it opened.
#[derive(Debug, Default)]
pub struct World {
    state: Mutex<State>,
}

#[derive(Debug, Default)]
struct State {
    /// `Some(until)`: unplugged; back at `until` (`None`: never).
    unplugged: Option<Option<Instant>>,
    /// Indices (into the spec's fault list) of faults that have fired.
    fired: Vec<usize>,
}

/// The worlds of the boards this process has emulated, by spec text.
static WORLDS: Mutex<Vec<(String, Arc<World>)>> = Mutex::new(Vec::new());

impl World {
    /// The world of the board whose spec reads `spec`, shared with every earlier caller of
    /// this process for the same text: a board reopened after it went away is the same board
    /// (still unplugged until its time comes, its one-shot faults spent), in process as in the
    /// emulator's C library.
    pub fn shared(spec: String) -> Arc<World> {
        let mut worlds = WORLDS.lock().unwrap_or_else(|p| p.into_inner());
        match worlds.iter().find(|(k, _)| *k == spec) {
            Some((_, w)) => Arc::clone(w),
            None => {
                let w = Arc::new(World::default());
                worlds.push((spec, Arc::clone(&w)));
                w
            }
        }
    }

    /// Whether the board is on the bus now (it comes back when its time has come).
    pub fn present(&self) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match s.unplugged {
            None => true,
            Some(Some(until)) if Instant::now() >= until => {
                s.unplugged = None;
                true
            }
            Some(_) => false,
        }
    }

    /// Takes the board off the bus until `until` (`None`: for good).
    pub fn unplug(&self, until: Option<Instant>) {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).unplugged = Some(until);
    }

    /// Marks fault `index` as fired; `false` if it already had.
    pub fn fire(&self, index: usize) -> bool {
        let mut s = self.state.lock().unwrap_or_else(|p| p.into_inner());
        if s.fired.contains(&index) {
            return false;
        }
        s.fired.push(index);
        true
    }

    /// Whether fault `index` has fired.
    pub fn has_fired(&self, index: usize) -> bool {
        self.state.lock().unwrap_or_else(|p| p.into_inner()).fired.contains(&index)
    }

    /// Applies `faults` (the spec's list, by index) to frame `index`, `seconds` into the run:
    /// fires each one-shot fault once, takes the board off the bus when an unplug fires
    /// (the frame is then [`FrameFate::Stalled`]), and says whether a stall starts.
    pub(crate) fn frame_fate(&self, faults: &[Fault], index: u64, seconds: f64) -> FaultOutcome {
        let mut outcome = FaultOutcome { fate: FrameFate::Keep, hold_pipe: None };
        for (i, fault) in faults.iter().enumerate() {
            match *fault {
                Fault::Drop { frame, frames } if (frame..frame + frames).contains(&index) => {
                    if !self.has_fired(i) {
                        outcome.fate = FrameFate::Drop;
                    }
                    if index + 1 == frame + frames {
                        self.fire(i);
                    }
                }
                Fault::Corrupt { frame } if frame == index && self.fire(i) => outcome.fate = FrameFate::Corrupt,
                Fault::Stall { after_s, for_s } if seconds >= after_s && self.fire(i) => {
                    outcome.hold_pipe = Some(for_s.map(|d| Instant::now() + Duration::from_secs_f64(d)));
                }
                Fault::Unplug { after_s, back_after_s } if seconds >= after_s && self.fire(i) => {
                    self.unplug(back_after_s.map(|b| Instant::now() + Duration::from_secs_f64(b)));
                    outcome.fate = FrameFate::Stalled;
                    return outcome;
                }
                _ => {}
            }
        }
        outcome
    }
}
