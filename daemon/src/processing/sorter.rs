//! The live sorter Allego clients drive (Neurons1): detect-only, on the detector of the
//! acquisition thread. It has no clusters; what it adds to the detector is the on/off switch,
//! the phase and messages clients poll, and the statistics window its dashboard reports.

use std::time::Instant;

/// The one sorter's id, as radiens-core names the live sorter (`SPIKE_SORTER_ID`).
pub const SORTER_ID: &str = "Live Signals";

/// A command from `SpikeSorterCommand`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SorterCommand {
    /// Start detecting.
    On,
    /// Stop detecting (the detector stays built; every channel is disabled).
    Off,
    /// Forget every count and rate.
    ClearSort,
    /// Discard the counts and start again: the statistics window restarts now.
    Rebase,
    /// Back to the configured defaults on every channel, counts cleared; a sorter that was on
    /// stays on, one that was off stays off.
    Init,
}

/// What the sorter is doing.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SorterPhase {
    /// On, but not streaming: nothing to detect.
    Idle,
    /// On and streaming.
    Detecting,
    /// Switched off.
    Off,
}

/// The sorter's state on the control plane.
#[derive(Debug, Clone)]
pub struct SorterState {
    on: bool,
    /// Start of the statistics window.
    window_start: Instant,
    /// Detector counts at the window start, per channel (rates count from here).
    baseline: Vec<u64>,
    /// The last thing that happened, for clients polling the state.
    message: String,
}

impl SorterState {
    /// A sorter that is on (`on`) or off from the start.
    pub fn new(on: bool) -> Self {
        SorterState {
            on,
            window_start: Instant::now(),
            baseline: Vec::new(),
            message: if on { "detecting" } else { "off" }.into(),
        }
    }

    /// Whether detection runs.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// The phase, given whether a stream runs.
    pub fn phase(&self, streaming: bool) -> SorterPhase {
        match (self.on, streaming) {
            (false, _) => SorterPhase::Off,
            (true, false) => SorterPhase::Idle,
            (true, true) => SorterPhase::Detecting,
        }
    }

    /// The last thing that happened.
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Seconds since the statistics window started.
    pub fn window_seconds(&self) -> f64 {
        self.window_start.elapsed().as_secs_f64()
    }

    /// Spikes on `channel` since the window started, from the detector's running `count`.
    pub fn spikes_in_window(&self, channel: usize, count: u64) -> u64 {
        count.saturating_sub(self.baseline.get(channel).copied().unwrap_or(0))
    }

    /// Applies a command's effect on the sorter's own state; `counts` are the detector's
    /// running counts per channel now (after any reset the command caused).
    pub fn apply(&mut self, command: SorterCommand, counts: Vec<u64>) {
        match command {
            SorterCommand::On => {
                self.on = true;
                self.message = "detecting".into();
            }
            SorterCommand::Off => {
                self.on = false;
                self.message = "off".into();
            }
            SorterCommand::ClearSort => self.message = "counts cleared".into(),
            SorterCommand::Rebase => self.message = "counts cleared, statistics restarted".into(),
            SorterCommand::Init => self.message = "initialised: default parameters, counts cleared".into(),
        }
        if matches!(command, SorterCommand::ClearSort | SorterCommand::Rebase | SorterCommand::Init) {
            self.window_start = Instant::now();
            self.baseline = counts;
        }
    }

    /// Starts a new window with the counts of a new detector (a new stream starts at zero).
    pub fn restart_window(&mut self, channels: usize) {
        self.window_start = Instant::now();
        self.baseline = vec![0; channels];
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn commands_switch_detection_and_restart_the_window() {
        let mut s = SorterState::new(true);
        assert_eq!(s.phase(true), SorterPhase::Detecting);
        assert_eq!(s.phase(false), SorterPhase::Idle);
        s.apply(SorterCommand::Off, vec![]);
        assert!(!s.is_on());
        assert_eq!(s.phase(true), SorterPhase::Off);
        s.apply(SorterCommand::Rebase, vec![10, 20]);
        assert_eq!(s.spikes_in_window(1, 25), 5);
        assert_eq!(s.spikes_in_window(7, 3), 3);
        s.apply(SorterCommand::Init, vec![0, 0]);
        assert!(!s.is_on(), "INIT leaves an off sorter off");
        assert!(s.message().contains("default"));
        s.apply(SorterCommand::On, vec![]);
        s.apply(SorterCommand::Init, vec![0, 0]);
        assert!(s.is_on(), "and a running one running");
    }
}
