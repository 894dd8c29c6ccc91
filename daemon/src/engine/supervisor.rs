//! The supervisor thread: acts on streams and recordings that end without being asked to.
//!
//! The acquisition thread reports a stream whose device failed; the recorder reports files it
//! opened and closed, gaps, and a recording that ended on its own (a full disk, a failed
//! write). Either way the engine must update its state (and status must say why),
//! but neither thread may wait for the engine's lock, and status must not change state. So a
//! small thread of its own waits for those reports and applies them. It also says in the
//! journal, once a second at most, what real-time processing and a board's USB link lost
//! meanwhile (the link's losses in status too), and looks for
//! a device that went away mid-stream (`reconnect`).

use std::sync::{Arc, Weak};
use std::time::{Duration, Instant};

use super::link_watch::LinkWatch;
use super::Engine;
use crate::processing::losses::LossWatch;

/// How often the supervisor checks whether the engine is gone.
const ALIVE_CHECK: Duration = Duration::from_millis(200);
/// How often it looks at processing's loss counters.
const LOSS_CHECK: Duration = Duration::from_secs(1);

/// Starts the supervisor of `engine`; it ends when the engine is dropped.
pub(super) fn spawn(engine: &Arc<Engine>) -> std::io::Result<()> {
    let streams = engine.acquisition.ended_streams().clone();
    let recorders = engine.recorder_events.1.clone();
    let engine: Weak<Engine> = Arc::downgrade(engine);
    let mut losses = LossWatch::default();
    let mut link = LinkWatch::default();
    let mut checked = Instant::now();
    std::thread::Builder::new().name("ephysd-supervisor".into()).spawn(move || loop {
        if checked.elapsed() >= LOSS_CHECK {
            checked = Instant::now();
            let Some(engine) = engine.upgrade() else { return };
            if let Some(outputs) = engine.processing_outputs() {
                for line in losses.check(&outputs) {
                    tracing::warn!("{line}");
                }
            }
            let view = engine.view();
            if let Some(health) = &view.link {
                for line in link.check(&view.device.name, health) {
                    tracing::warn!("{line}");
                    engine.note_status(line);
                }
            }
        }
        crossbeam_channel::select! {
            recv(streams) -> ended => {
                let (Ok(ended), Some(engine)) = (ended, engine.upgrade()) else { return };
                engine.stream_ended(ended.stream, &ended.reason);
            }
            recv(recorders) -> event => {
                let (Ok(event), Some(engine)) = (event, engine.upgrade()) else { return };
                engine.recorder_event(event);
            }
            default(ALIVE_CHECK) => {
                let Some(engine) = engine.upgrade() else { return };
                engine.try_reconnect();
            }
        }
    })?;
    Ok(())
}
