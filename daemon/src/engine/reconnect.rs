//! A board that went away mid-stream (unplugged, powered off, its USB pipe stalled) is
//! opened again when it returns, and what was running resumes.
//!
//! When the acquisition thread reports the stream ended because the device is gone or
//! stalled, the engine closes the recording with every frame it had (as for any ended
//! stream), says so in status, and remembers what ran. The supervisor then calls
//! [`Engine::try_reconnect`] about once a second: once the device opens again, streaming
//! restarts with frame numbers that go on from where they stopped, plus the frames the
//! outage lasted; a recording that was running continues in a new file whose `/gaps` holds
//! the outage (reason "device"). The simulated device never goes away, so only boards do this.

use std::time::{Duration, Instant};

use ephysd_drivers::{BlockLayout, DeviceError, FrameBlock, Source, SourceError};

use super::{Engine, State};

/// How often an absent device is looked for.
const RETRY_EVERY: Duration = Duration::from_secs(1);

/// What ran when the device went away.
#[derive(Debug)]
pub(super) struct Reconnect {
    /// A recording was running (it was closed; a new one starts on return).
    recording: bool,
    /// The last frame index the stream delivered.
    last_frame: Option<u64>,
    since: Instant,
    next_try: Instant,
    attempts: u64,
    cause: String,
}

impl Reconnect {
    /// Whether `reason` means the device itself went away (rather than a request failing).
    pub(super) fn applies(reason: &SourceError) -> bool {
        matches!(reason, SourceError::Device(e) if e.is_gone() || matches!(e, DeviceError::Stalled { .. }))
    }

    pub(super) fn new(recording: bool, last_frame: Option<u64>, cause: String) -> Reconnect {
        let now = Instant::now();
        Reconnect { recording, last_frame, since: now, next_try: now + RETRY_EVERY, attempts: 0, cause }
    }
}

/// The stream of a device that came back, numbered on from the stream before it: device
/// frame 0 becomes `first_frame`.
pub(super) struct Continued {
    pub(super) inner: Box<dyn Source>,
    pub(super) first_frame: u64,
}

impl Source for Continued {
    fn layout(&self) -> BlockLayout {
        self.inner.layout()
    }

    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        self.inner.read_block(block)?;
        block.frame_index[..block.frames].iter_mut().for_each(|i| *i += self.first_frame);
        Ok(())
    }
}

impl Engine {
    /// If the device went away, tries (at most once per [`RETRY_EVERY`]) to open it again and
    /// resume streaming and recording. Called by the supervisor.
    pub(super) fn try_reconnect(&self) {
        let mut st = self.lock();
        let streaming = st.stream.is_some();
        let Some(r) = st.reconnect.as_mut() else { return };
        if Instant::now() < r.next_try || streaming {
            return;
        }
        r.next_try = Instant::now() + RETRY_EVERY;
        r.attempts += 1;
        let spec = st.device.spec().clone();
        if let Err(e) = self.reopen_locked(&mut st, &spec, false) {
            let r = st.reconnect.as_ref().expect("checked above");
            if r.attempts == 1 || r.attempts.is_multiple_of(60) {
                tracing::warn!(attempts = r.attempts, "device still gone: {e}");
            }
            return;
        }
        let r = st.reconnect.take().expect("checked above");
        let outage = r.since.elapsed();
        let rate = st.description.sample_rate_hz;
        // Frame numbers go on as if the device had streamed through the outage.
        let first_frame = r.last_frame.map_or(0, |last| last + 1 + (outage.as_secs_f64() * rate).round() as u64);
        if let Err(e) = self.resume_locked(&mut st, first_frame, r.recording.then_some(r.last_frame).flatten()) {
            self.set_error(
                &mut st,
                format!("device back after {:.1} s, but streaming did not resume: {e}", outage.as_secs_f64()),
            );
            self.publish(&st);
            return;
        }
        let message = format!(
            "{} was gone for {:.1} s ({}); streaming resumed{}",
            st.description.name,
            outage.as_secs_f64(),
            r.cause,
            if r.recording { ", recording continues in a new file (the outage is in its /gaps)" } else { "" }
        );
        tracing::warn!("{message}");
        st.last_error = Some(message);
        self.publish(&st);
    }

    fn resume_locked(&self, st: &mut State, first_frame: u64, follows: Option<u64>) -> Result<(), super::EngineError> {
        self.start_stream_from(st, first_frame)?;
        if follows.is_some() {
            self.start_recording_following(st, follows)?;
        } else {
            self.arm_locked(st)?;
        }
        Ok(())
    }
}
