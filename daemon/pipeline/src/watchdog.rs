//! Decides whether the daemon may tell systemd it is alive.
//!
//! systemd's watchdog must fire when the acquisition thread stalls, even though the control
//! plane (which sends the pings) is still healthy. So a ping is allowed only if the acquisition
//! heartbeat advanced recently; a frozen heartbeat withholds pings until systemd acts.

use std::time::{Duration, Instant};

/// Tracks the acquisition heartbeat and answers "may we ping now?".
#[derive(Debug)]
pub struct WatchdogGate {
    stall_after: Duration,
    last_beat: u64,
    last_change: Instant,
}

/// What the gate concluded on one check.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Liveness {
    /// The heartbeat moved within the allowed window: ping.
    Alive,
    /// The heartbeat has been frozen for longer than the window: do not ping.
    Stalled {
        /// How long the heartbeat has been frozen, ms.
        for_ms: u64,
    },
}

impl WatchdogGate {
    /// A gate that declares a stall once the heartbeat has not moved for `stall_after`.
    pub fn new(stall_after: Duration, beat: u64, now: Instant) -> Self {
        WatchdogGate { stall_after, last_beat: beat, last_change: now }
    }

    /// Records the heartbeat `beat` seen at `now` and says whether the thread is alive.
    pub fn check(&mut self, beat: u64, now: Instant) -> Liveness {
        if beat != self.last_beat {
            self.last_beat = beat;
            self.last_change = now;
        }
        let frozen = now.saturating_duration_since(self.last_change);
        if frozen > self.stall_after {
            Liveness::Stalled { for_ms: frozen.as_millis() as u64 }
        } else {
            Liveness::Alive
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_moving_heartbeat_is_alive_and_a_frozen_one_stalls() {
        let t0 = Instant::now();
        let mut gate = WatchdogGate::new(Duration::from_millis(500), 0, t0);
        assert_eq!(gate.check(1, t0 + Duration::from_millis(100)), Liveness::Alive);
        assert_eq!(gate.check(1, t0 + Duration::from_millis(500)), Liveness::Alive);
        assert_eq!(gate.check(1, t0 + Duration::from_millis(700)), Liveness::Stalled { for_ms: 600 });
        assert_eq!(gate.check(2, t0 + Duration::from_millis(800)), Liveness::Alive);
    }
}
