//! Starting and stopping the stream.

use std::sync::Arc;

use ephysd_pipeline::{Pacing, PrimaryCache, StreamId, StreamPlan};

use super::reconnect::{Continued, Reconnect};
use super::{Blocked, Engine, EngineError, State, Stream};
use crate::recorder::StopAt;

impl Engine {
    /// Starts streaming; does nothing if already streaming. A new stream starts a new cache.
    pub fn start_streaming(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        self.start_stream_locked(&mut st)?;
        let armed = self.arm_locked(&mut st);
        self.publish(&st);
        armed
    }

    /// Stops streaming; refused while recording (stop the recording first).
    pub fn stop_streaming(&self) -> Result<(), EngineError> {
        let mut st = self.lock();
        if st.recording.is_some() {
            return Err(EngineError::RecordingOn(Blocked::StopStream));
        }
        // Stopping also means: do not resume a stream a vanished device broke off.
        st.reconnect = None;
        if st.stream.take().is_some() {
            self.acquisition.stop();
            st.processing.stream_stopped();
            self.kpi.detach();
            tracing::info!("streaming stopped");
            self.notifier.status("idle: streaming off");
        }
        self.publish(&st);
        Ok(())
    }

    /// Starts the stream unless one is running.
    pub(super) fn start_stream_locked(&self, st: &mut State) -> Result<(), EngineError> {
        self.start_stream_from(st, 0)
    }

    /// Starts the stream unless one is running, its first frame numbered `first_frame` (0, or
    /// where a stream the device broke off would have got to).
    pub(super) fn start_stream_from(&self, st: &mut State, first_frame: u64) -> Result<(), EngineError> {
        if st.stream.is_some() {
            return Ok(());
        }
        let d = Arc::clone(&st.description);
        let capacity = (f64::from(st.cache_seconds) * d.sample_rate_hz).ceil() as usize;
        // The cache is built (its pages faulted in: seconds at 1024 channels) before the
        // device starts: a board runs from its start, and its FIFO holds only about two
        // seconds of 1024 channels.
        let (cache, writer) = PrimaryCache::new(d.layout, capacity, d.sample_rate_hz);
        let stages = st.processing.chain_for_stream(&d, &cache)?;
        let mut source = st.device.start_stream()?;
        if first_frame > 0 {
            source = Box::new(Continued { inner: source, first_frame });
        }
        let id = StreamId(st.next_stream);
        st.next_stream += 1;
        self.acquisition.start(StreamPlan {
            id,
            source,
            cache: writer,
            stages,
            pacing: if d.free_running { Pacing::Consumer } else { Pacing::Device },
        });
        match st.processing.outputs() {
            Some(o) => self.kpi.attach_with_detector(o.filtered, Some(o.spikes), Some(o.detector)),
            None => self.kpi.attach(Arc::clone(&cache), None),
        }
        tracing::info!(device = %d.name, "streaming started");
        self.notifier.status(&format!("streaming: {}", d.name));
        st.stream = Some(Stream { id, cache: Arc::clone(&cache), started_at: std::time::SystemTime::now() });
        st.reconnect = None;
        Ok(())
    }

    /// Forgets a stream the acquisition thread reports as ended (if it is still the current
    /// one) and says why in status.
    pub(super) fn stream_ended(&self, id: StreamId, reason: &ephysd_drivers::SourceError) {
        let mut st = self.lock();
        if st.stream.as_ref().map(|s| s.id) != Some(id) {
            return;
        }
        tracing::error!("stream ended: {reason}");
        let stream = st.stream.take();
        let head = stream.as_ref().map_or(0, |s| s.cache.head());
        let last_frame = stream.as_ref().and_then(|s| s.cache.frame_index_at(head.checked_sub(1)?));
        if Reconnect::applies(reason) && !st.description.simulated {
            st.reconnect = Some(Reconnect::new(st.recording.is_some(), last_frame, reason.to_string()));
        }
        st.processing.stream_stopped();
        self.kpi.detach();
        let retry = if st.reconnect.is_some() { "; opening it again as soon as it is back" } else { "" };
        self.set_error(&mut st, format!("stream ended: {reason}{retry}"));
        // Whatever the stream delivered before it ended is recorded, then the file is closed.
        if let Err(e) = self.finish_recording_locked(&mut st, StopAt::Frame(head)) {
            tracing::error!("{e}");
        }
        self.publish(&st);
    }
}
