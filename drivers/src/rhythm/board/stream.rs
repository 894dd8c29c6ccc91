//! The read side of a board: waits for whole USB blocks in the FIFO, reads them and decodes
//! frames into the pipeline's blocks (RHS boards: the AC amplifier words).
//!
//! Nothing is lost silently: a frame without the magic number is counted as a corrupt read,
//! the intact frames before it are kept and the stream finds whole frames again (the frames
//! skipped show as a jump in `frame_index`, which the recording marks as a gap); a jump in
//! the board's sample index is counted in [`BoardHealth::frames_lost`]; a FIFO filling up
//! is a warning before it overflows. A board that stops answering ends the stream with
//! [`DeviceError::Gone`]; one whose pipe stops delivering with [`DeviceError::Stalled`].
//!
//! The fields a [`FrameBlock`] has no lane for (RHS stimulation flags, DC amplifier words and
//! analog outputs; XDAQ's upper TTL bits and timestamps) are decoded alongside into
//! preallocated [`FrameExtras`] ([`RhythmSource::extras`]). On XDAQ with RHS headstages a
//! stream runs in stimulation command mode (RHX `usbdatathread.cpp`: `setStimCmdMode(true)`
//! before the run, `false` after it). Frames read are counted for the control side
//! ([`super::StreamProgress`]).

use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::bringup::fifo_words;
use super::{lock, panel_error, BoardHealth, RhythmBoard, SharedPanel, StreamPlan, StreamProgress};
use crate::device::DeviceError;
use crate::frame::{BlockLayout, FrameBlock};
use crate::frontpanel::{FrontPanelError, OkErrorCode};
use crate::rhythm::endpoints::{self as ep, Interface};
use crate::rhythm::{decode_with_extras, resync, ChipFamily, DecodeError, FrameExtras, FrameFormat, ANALOG_INPUTS};
use crate::source::{Source, SourceError};

/// Frames moved per USB read: RHX's data block, whose bytes are a whole number of the USB 3
/// pipe's 1024-byte blocks for every stream count (frames are a multiple of 8 bytes).
const USB_FRAMES: usize = 128;
/// A FIFO fuller than this (per mille of its capacity) is a warning: the host is falling
/// behind and frames will be lost if it goes on.
pub const FIFO_WARNING_PERMILLE: u64 = 500;
/// No data for this long while running is a stalled pipe.
const STALL_TIMEOUT: Duration = Duration::from_secs(2);

/// A running stream of a board.
pub struct RhythmSource {
    panel: SharedPanel,
    name: String,
    interface: Interface,
    format: FrameFormat,
    layout: BlockLayout,
    /// Kept amplifier words of each stream (all of them, or the first 16 of an RHD2216's 32).
    kept: Vec<usize>,
    compact: bool,
    free_running: bool,
    rate: f64,
    /// Bytes read from the pipe and not yet decoded: `buffer[start..end]`.
    buffer: Vec<u8>,
    start: usize,
    end: usize,
    /// Decoded frames at full width, for boards with streams of fewer electrodes than words.
    wide: FrameBlock,
    /// The board's next sample index, once known.
    next_index: Option<u64>,
    /// The board's sample index of the stream's frame 0.
    base: Option<u64>,
    health: Arc<BoardHealth>,
    fifo_warned: bool,
    /// The lanes of the last block's frames that the block has no room for.
    extras: FrameExtras,
    progress: Arc<StreamProgress>,
    rhs: bool,
}

impl std::fmt::Debug for RhythmSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RhythmSource").field("name", &self.name).field("layout", &self.layout).finish_non_exhaustive()
    }
}

/// The pipeline block layout of a board's streams.
pub fn stream_layout(streams: &[StreamPlan], frames_per_block: usize) -> BlockLayout {
    BlockLayout {
        amplifier_channels: streams.iter().map(|s| s.channels).sum(),
        aux_channels: 0,
        analog_in_channels: ANALOG_INPUTS,
        frames_per_block,
    }
}

impl RhythmSource {
    pub(super) fn start(board: &mut RhythmBoard) -> Result<RhythmSource, DeviceError> {
        let name = board.settings.name.clone();
        let interface = board.interface;
        let format = FrameFormat::new(board.settings.board, board.streams.len()).map_err(|e| DeviceError::Io {
            device: name.clone(),
            operation: "start streaming",
            source: std::io::Error::other(e),
        })?;
        let layout = stream_layout(&board.streams, board.settings.frames_per_block);
        let kept = board.streams.iter().map(|s| s.channels).collect::<Vec<_>>();
        let compact = kept.iter().any(|&k| k != format.channels_per_stream());
        let bpf = format.bytes_per_frame();
        let usb_bytes = USB_FRAMES * bpf;
        if let Some(block) = interface.pipe_block_size() {
            debug_assert!(usb_bytes.is_multiple_of(block), "{usb_bytes} bytes per read");
        }
        // Room for a block's worth of frames plus one USB read.
        let capacity = (board.settings.frames_per_block.div_ceil(USB_FRAMES) + 1) * usb_bytes;
        let wide = FrameBlock::new(BlockLayout {
            amplifier_channels: format.amplifier_channels(),
            aux_channels: 0,
            analog_in_channels: ANALOG_INPUTS,
            frames_per_block: board.settings.frames_per_block,
        });
        let rhs = board.settings.board.chip() == ChipFamily::Rhs;
        {
            let mut p = lock(&board.panel);
            let io = |e| panel_error(&name, "start streaming", e);
            flush(&mut **p, interface).map_err(io)?;
            if rhs {
                p.set_wire_in(ep::rhs::WIRE_IN_AUX_ENABLE, 0xff, 0xff).map_err(io)?;
                p.set_wire_in(ep::rhs::WIRE_IN_STIM_CMD_MODE, 1, 1).map_err(io)?;
            }
            p.set_wire_in(ep::WIRE_IN_RESET_RUN, ep::CONTINUOUS_RUN_BIT, ep::CONTINUOUS_RUN_BIT).map_err(io)?;
            p.update_wire_ins().map_err(io)?;
            p.activate_trigger_in(ep::TRIGGER_IN_SPI_START, 0).map_err(io)?;
        }
        Ok(RhythmSource {
            panel: board.panel.clone(),
            name,
            interface,
            format,
            layout,
            kept,
            compact,
            free_running: board.settings.free_running,
            rate: board.settings.sample_rate_hz,
            buffer: vec![0; capacity],
            start: 0,
            end: 0,
            wide,
            next_index: None,
            base: None,
            health: board.health.clone(),
            fifo_warned: false,
            extras: FrameExtras::new(&format, board.settings.frames_per_block),
            progress: {
                board.progress.streaming.store(true, Ordering::Release);
                board.progress.clone()
            },
            rhs,
        })
    }

    /// The lanes of the last block's frames that a [`FrameBlock`] has no room for (RHS:
    /// stimulation flags, DC amplifier words, analog outputs), for its `frames` frames.
    pub fn extras(&self) -> &FrameExtras {
        &self.extras
    }

    fn buffered_frames(&self) -> usize {
        (self.end - self.start) / self.format.bytes_per_frame()
    }

    /// Reads USB blocks until `frames` are buffered.
    fn fill(&mut self, frames: usize) -> Result<(), SourceError> {
        let bpf = self.format.bytes_per_frame();
        let usb_bytes = USB_FRAMES * bpf;
        let mut last_progress = Instant::now();
        while self.buffered_frames() < frames {
            if self.start > 0 {
                self.buffer.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            let ready = {
                let panel = self.panel.clone();
                let mut p = lock(&panel);
                let words = fifo_words(&mut **p, self.interface).map_err(|e| self.gone("read the FIFO level", e))?;
                self.watch_fifo(words);
                if self.free_running || words * 2 >= usb_bytes as u64 {
                    let end = self.end;
                    let block = self.interface.pipe_block_size();
                    let asked = Instant::now();
                    match p.read_pipe_out(ep::PIPE_OUT_DATA, block, &mut self.buffer[end..end + usb_bytes]) {
                        Ok(_) => {}
                        // The pipe stopped moving data while the board still answers.
                        Err(FrontPanelError::Code { code: OkErrorCode::Timeout, .. }) => {
                            return Err(SourceError::Device(DeviceError::Stalled {
                                device: self.name.clone(),
                                waited_ms: asked.elapsed().as_millis() as u64,
                            }))
                        }
                        Err(e) => return Err(self.gone("read the data pipe", e)),
                    }
                    true
                } else {
                    false
                }
            };
            if ready {
                self.end += usb_bytes;
                self.progress.frames_read.fetch_add(USB_FRAMES as u64, Ordering::AcqRel);
                last_progress = Instant::now();
            } else {
                if last_progress.elapsed() >= STALL_TIMEOUT {
                    return Err(SourceError::Device(DeviceError::Stalled {
                        device: self.name.clone(),
                        waited_ms: last_progress.elapsed().as_millis() as u64,
                    }));
                }
                // A quarter of a USB block's time: short enough not to fall behind, long
                // enough not to spin.
                std::thread::sleep(Duration::from_secs_f64(USB_FRAMES as f64 / self.rate / 4.0));
            }
        }
        Ok(())
    }

    fn gone(&self, operation: &'static str, e: FrontPanelError) -> SourceError {
        SourceError::Device(panel_error(&self.name, operation, e))
    }

    fn watch_fifo(&mut self, words: u64) {
        let permille = words * 1000 / self.interface.fifo_capacity_words().max(1);
        self.health.fifo_peak_permille.fetch_max(permille, Ordering::Relaxed);
        if permille >= FIFO_WARNING_PERMILLE && !self.fifo_warned {
            self.fifo_warned = true;
            self.health.fifo_warnings.fetch_add(1, Ordering::Relaxed);
        } else if permille < FIFO_WARNING_PERMILLE / 2 {
            self.fifo_warned = false;
        }
    }

    /// Decodes up to `frames` buffered frames into `block` (or the wide block), handling a
    /// corrupt frame by keeping those before it and finding whole frames again after it.
    fn decode_into(&mut self, frames: usize, block: &mut FrameBlock) -> Result<usize, SourceError> {
        let bpf = self.format.bytes_per_frame();
        let bytes = &self.buffer[self.start..self.start + frames * bpf];
        match decode_with_extras(&self.format, bytes, block, &mut self.extras, self.next_index) {
            Ok(report) => {
                self.note_decoded(&report, frames);
                self.start += frames * bpf;
                Ok(frames)
            }
            Err(DecodeError::BadMagic { frame, .. }) => {
                self.health.corrupt_reads.fetch_add(1, Ordering::Relaxed);
                let intact = frame;
                if intact > 0 {
                    let report = decode_with_extras(
                        &self.format,
                        &bytes[..intact * bpf],
                        block,
                        &mut self.extras,
                        self.next_index,
                    )
                    .expect("frames before the corrupt one decode");
                    self.note_decoded(&report, intact);
                }
                let from = self.start + intact * bpf + 2;
                match resync(&self.format, &self.buffer[..self.end], from) {
                    Some(at) => self.start = at,
                    None => {
                        // No whole frame left in the buffer: drop it and read on.
                        self.start = self.end;
                    }
                }
                Ok(intact)
            }
            Err(e) => Err(SourceError::Device(DeviceError::Io {
                device: self.name.clone(),
                operation: "decode USB frames",
                source: std::io::Error::other(e),
            })),
        }
    }

    fn note_decoded(&mut self, report: &crate::rhythm::DecodeReport, frames: usize) {
        if frames > 0 && self.base.is_none() {
            // The stream's frame 0 is the board's first sample after the start.
            self.base = report.next_index.map(|next| next - frames as u64);
        }
        if report.missing > 0 {
            self.health.frames_lost.fetch_add(report.missing, Ordering::Relaxed);
        }
        self.next_index = report.next_index;
    }

    /// Copies the kept amplifier channels of the wide block into `block`.
    fn compact_into(&self, frames: usize, block: &mut FrameBlock) {
        let wide_ch = self.wide.layout().amplifier_channels;
        let ch = block.layout().amplifier_channels;
        let cps = self.format.channels_per_stream();
        for f in 0..frames {
            let src = &self.wide.amplifier[f * wide_ch..(f + 1) * wide_ch];
            let dst = &mut block.amplifier[f * ch..(f + 1) * ch];
            let mut at = 0;
            for (s, &k) in self.kept.iter().enumerate() {
                dst[at..at + k].copy_from_slice(&src[s * cps..s * cps + k]);
                at += k;
            }
        }
        let a = ANALOG_INPUTS;
        block.analog_in[..frames * a].copy_from_slice(&self.wide.analog_in[..frames * a]);
        block.digital_in[..frames].copy_from_slice(&self.wide.digital_in[..frames]);
        block.digital_out[..frames].copy_from_slice(&self.wide.digital_out[..frames]);
        block.frame_index[..frames].copy_from_slice(&self.wide.frame_index[..frames]);
    }
}

/// Empties the FIFO (the sequencer is stopped).
pub(super) fn flush(
    p: &mut dyn crate::frontpanel::FrontPanel,
    interface: Interface,
) -> Result<(), crate::frontpanel::FrontPanelError> {
    let mut scratch = [0u8; 64 * 1024];
    loop {
        let words = fifo_words(p, interface)?;
        let block = interface.pipe_block_size().unwrap_or(2);
        let whole = ((words * 2) as usize / block * block).min(scratch.len());
        if whole == 0 {
            return Ok(());
        }
        p.read_pipe_out(ep::PIPE_OUT_DATA, interface.pipe_block_size(), &mut scratch[..whole])?;
    }
}

impl Source for RhythmSource {
    fn layout(&self) -> BlockLayout {
        self.layout
    }

    fn read_block(&mut self, block: &mut FrameBlock) -> Result<(), SourceError> {
        if block.layout() != self.layout {
            return Err(SourceError::LayoutMismatch { expected: self.layout, got: block.layout() });
        }
        let want = self.layout.frames_per_block;
        loop {
            self.fill(want)?;
            let got = if self.compact {
                let mut wide = std::mem::replace(
                    &mut self.wide,
                    FrameBlock::new(BlockLayout { frames_per_block: 0, ..self.layout }),
                );
                let got = self.decode_into(want, &mut wide);
                self.wide = wide;
                let got = got?;
                self.compact_into(got, block);
                block.frames = got;
                got
            } else {
                self.decode_into(want, block)?
            };
            if got > 0 {
                let base = self.base.unwrap_or(0);
                block.frame_index[..got].iter_mut().for_each(|i| *i -= base);
                return Ok(());
            }
        }
    }
}

impl Drop for RhythmSource {
    fn drop(&mut self) {
        // Stop the sequencer: no continuous run, a run length of zero (RHX's stop).
        self.progress.streaming.store(false, Ordering::Release);
        let mut p = lock(&self.panel);
        let _ = p.set_wire_in(ep::WIRE_IN_RESET_RUN, 0, ep::CONTINUOUS_RUN_BIT);
        if self.rhs {
            let _ = p.set_wire_in(ep::rhs::WIRE_IN_STIM_CMD_MODE, 0, 1);
        }
        let (lo, hi) = self.interface.max_time_step();
        let _ = p.set_wire_in(lo, 0, u32::MAX);
        if let Some(hi) = hi {
            let _ = p.set_wire_in(hi, 0, u32::MAX);
        }
        let _ = p.update_wire_ins();
        let _ = flush(&mut **p, self.interface);
    }
}
