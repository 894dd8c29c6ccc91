//! The read side of a SmartBox Pro: waits for frames in the FIFO, reads them and decodes them
//! into the pipeline's blocks ([`FrameDecoder`]), allocating nothing per block.
//!
//! Nothing is lost silently: a frame without the magic word is counted in
//! [`BoardHealth::corrupt_reads`] and skipped, a jump of the frame counter in
//! [`BoardHealth::frames_lost`]; both are jumps in `frame_index` (gaps in a recording). A box
//! that stops answering ends the stream with [`DeviceError::Gone`]; one whose pipe stops
//! delivering with [`DeviceError::Stalled`].

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::endpoints as ep;
use super::frame::FrameDecoder;
use crate::device::DeviceError;
use crate::frame::{BlockLayout, FrameBlock};
use crate::frontpanel::{FrontPanel, FrontPanelError, OkErrorCode};
use crate::rhythm::board::stream::FIFO_WARNING_PERMILLE;
use crate::rhythm::board::{lock, panel_error, BoardHealth, SharedPanel};
use crate::source::{Source, SourceError};

/// No data for this long while running is a stalled pipe.
const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// Bytes waiting in the FIFO.
fn fifo_bytes(p: &mut dyn FrontPanel) -> Result<u64, FrontPanelError> {
    p.update_wire_outs()?;
    Ok(u64::from(p.wire_out(ep::WIRE_OUT_FIFO_BYTES)?))
}

/// Empties the FIFO (the stream is stopped).
pub(super) fn flush(p: &mut dyn FrontPanel) -> Result<(), FrontPanelError> {
    let mut scratch = [0u8; 64 * 1024];
    loop {
        let waiting = fifo_bytes(p)? as usize;
        if waiting == 0 {
            return Ok(());
        }
        let n = waiting.min(scratch.len());
        p.read_pipe_out(ep::PIPE_OUT_DATA, None, &mut scratch[..n])?;
    }
}

/// A running stream of a SmartBox Pro.
pub struct SinapsSource {
    panel: SharedPanel,
    name: String,
    layout: BlockLayout,
    decoder: FrameDecoder,
    rate: f64,
    free_running: bool,
    /// Bytes read and not yet decoded: `buffer[start..end]`.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    health: Arc<BoardHealth>,
    fifo_warned: bool,
    streaming: Arc<AtomicBool>,
}

impl std::fmt::Debug for SinapsSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SinapsSource").field("name", &self.name).field("layout", &self.layout).finish_non_exhaustive()
    }
}

impl SinapsSource {
    /// Empties the FIFO and starts the run.
    pub(super) fn start(
        panel: SharedPanel,
        name: String,
        layout: BlockLayout,
        rate: f64,
        free_running: bool,
        health: Arc<BoardHealth>,
        streaming: Arc<AtomicBool>,
    ) -> Result<SinapsSource, DeviceError> {
        let decoder = FrameDecoder::new(layout.amplifier_channels);
        let bpf = decoder.bytes_per_frame();
        {
            let mut p = lock(&panel);
            let io = |e| panel_error(&name, "start streaming", e);
            flush(&mut **p).map_err(io)?;
            p.set_wire_in(ep::WIRE_IN_CONTROL, ep::CONTROL_RUN, ep::CONTROL_RUN).map_err(io)?;
            p.update_wire_ins().map_err(io)?;
        }
        streaming.store(true, Ordering::Release);
        Ok(SinapsSource {
            panel,
            name,
            layout,
            decoder,
            rate,
            free_running,
            // A block's frames plus one: a frame cut short by lost bytes waits for its rest.
            buffer: vec![0; (layout.frames_per_block + 1) * bpf],
            start: 0,
            end: 0,
            health,
            fifo_warned: false,
            streaming,
        })
    }

    fn gone(&self, operation: &'static str, e: FrontPanelError) -> SourceError {
        SourceError::Device(panel_error(&self.name, operation, e))
    }

    fn watch_fifo(&mut self, bytes: u64) {
        let permille = bytes * 1000 / ep::FIFO_CAPACITY_BYTES;
        self.health.fifo_peak_permille.fetch_max(permille, Ordering::Relaxed);
        if permille >= FIFO_WARNING_PERMILLE && !self.fifo_warned {
            self.fifo_warned = true;
            self.health.fifo_warnings.fetch_add(1, Ordering::Relaxed);
        } else if permille < FIFO_WARNING_PERMILLE / 2 {
            self.fifo_warned = false;
        }
    }

    /// Reads at least one more frame's bytes from the pipe (up to `frames` frames), waiting
    /// for them while the FIFO holds none.
    fn read_more(&mut self, frames: usize) -> Result<(), SourceError> {
        if self.start > 0 {
            self.buffer.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
        }
        let bpf = self.decoder.bytes_per_frame();
        let room = (self.buffer.len() - self.end) / bpf * bpf;
        let wanted = (frames * bpf).min(room);
        let waited = Instant::now();
        loop {
            let panel = Arc::clone(&self.panel);
            let mut p = lock(&panel);
            let waiting = fifo_bytes(&mut **p).map_err(|e| self.gone("read the FIFO level", e))?;
            self.watch_fifo(waiting);
            let n = if self.free_running { wanted } else { (waiting as usize / bpf * bpf).min(wanted) };
            if n > 0 {
                let end = self.end;
                let asked = Instant::now();
                return match p.read_pipe_out(ep::PIPE_OUT_DATA, None, &mut self.buffer[end..end + n]) {
                    Ok(_) => {
                        self.end += n;
                        Ok(())
                    }
                    Err(FrontPanelError::Code { code: OkErrorCode::Timeout, .. }) => {
                        Err(SourceError::Device(DeviceError::Stalled {
                            device: self.name.clone(),
                            waited_ms: asked.elapsed().as_millis() as u64,
                        }))
                    }
                    Err(e) => Err(self.gone("read the data pipe", e)),
                };
            }
            drop(p);
            if waited.elapsed() >= STALL_TIMEOUT {
                return Err(SourceError::Device(DeviceError::Stalled {
                    device: self.name.clone(),
                    waited_ms: waited.elapsed().as_millis() as u64,
                }));
            }
            // A quarter of the missing frames' time: short enough not to fall behind, long
            // enough not to spin.
            std::thread::sleep(Duration::from_secs_f64((frames as f64 / self.rate / 4.0).max(100e-6)));
        }
    }
}

impl Source for SinapsSource {
    fn layout(&self) -> BlockLayout {
        self.layout
    }

    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        if block.layout() != self.layout {
            return Err(SourceError::LayoutMismatch { expected: self.layout, got: block.layout() });
        }
        let want = self.layout.frames_per_block;
        block.frames = 0;
        loop {
            let out = self.decoder.decode(&self.buffer[self.start..self.end], block);
            self.start += out.consumed;
            if out.corrupt > 0 {
                self.health.corrupt_reads.fetch_add(out.corrupt, Ordering::Relaxed);
            }
            if out.missing > 0 {
                self.health.frames_lost.fetch_add(out.missing, Ordering::Relaxed);
            }
            if block.frames == want {
                return Ok(());
            }
            self.read_more(want - block.frames)?;
        }
    }
}

impl Drop for SinapsSource {
    fn drop(&mut self) {
        let mut p = lock(&self.panel);
        let _ = p.set_wire_in(ep::WIRE_IN_CONTROL, 0, ep::CONTROL_RUN);
        let _ = p.update_wire_ins();
        let _ = flush(&mut **p);
        self.streaming.store(false, Ordering::Release);
    }
}
