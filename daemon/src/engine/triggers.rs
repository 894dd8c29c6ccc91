//! Digital triggers: lines that start and stop recording on their edges.
//!
//! While any trigger is enabled and the stream runs, a recording is armed: the recorder opens
//! a file at each rising edge of a trigger line and closes it at the falling edge, frame-exact.
//! Changing the triggers re-arms the recording with the new set.

use super::{Engine, EngineError, State};
use crate::recorder::{StopAt, Trigger};

impl Engine {
    /// The triggers enabled now.
    pub fn triggers(&self) -> Vec<Trigger> {
        self.view().triggers.clone()
    }

    /// Enables or disables `trigger`, and re-arms the recording with the new set.
    pub fn set_trigger(&self, trigger: Trigger, enabled: bool) -> Result<(), EngineError> {
        let mut st = self.lock();
        let changed = if enabled { st.triggers.insert(trigger) } else { st.triggers.remove(&trigger) };
        let result = if changed { self.rearm_locked(&mut st) } else { Ok(()) };
        self.publish(&st);
        result
    }

    /// Disables every trigger; a triggered recording stops.
    pub fn disable_all_triggers(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        let had = !st.triggers.is_empty();
        st.triggers.clear();
        let result = if had { self.rearm_locked(&mut st) } else { Ok(()) };
        self.publish(&st);
        result
    }

    /// Stops the running recording and, while streaming with triggers enabled, arms a new one.
    fn rearm_locked(&self, st: &mut State) -> Result<(), EngineError> {
        if st.recording.is_some() {
            let head = st.stream.as_ref().map_or(0, |s| s.cache.head());
            self.finish_recording_locked(st, StopAt::Frame(head))?;
        }
        self.arm_locked(st)
    }

    /// Arms a triggered recording if the stream runs, triggers are enabled and none is armed.
    pub(super) fn arm_locked(&self, st: &mut State) -> Result<(), EngineError> {
        if st.stream.is_some() && st.recording.is_none() && !st.triggers.is_empty() {
            self.start_recording_locked(st)?;
        }
        Ok(())
    }
}
