//! What outlives one opened handle of the emulated board: whether it is plugged in, and which
//! one-shot faults have already fired (a board that came back is not unplugged again by the
//! same fault when it is reopened).

use std::sync::Mutex;
use std::time::Instant;

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

impl World {
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
}
