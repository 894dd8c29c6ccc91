//! Signals from the primary cache: a time range and some channels, as clients ask for them.
//!
//! Times are seconds of stream time (frame 0 is the stream's first frame), the same clock
//! status reports the cache's range on. A range reaching past what the cache holds is
//! clipped to it, and the reply says what was served; a range with nothing in the cache is
//! refused with what the cache does hold. Reads never take the state lock, so a client
//! pulling signals never waits for a recording to finalize, nor delays one.

use std::time::{Duration, SystemTime};

use std::sync::Arc;

use ephysd_pipeline::{
    amplifier_rows, snapshot, BufferPool, ChannelPick, FrameSpan, Matrix, PrimaryCache, Snapshot, SnapshotError,
};

use super::{Engine, EngineError};

/// The largest reply served: well under protobuf's 2 GiB message limit, and about 8 s of
/// 1024 channels at 30 kHz.
pub const MAX_REPLY_BYTES: u64 = 1 << 30;

/// Which part of the stream to read, in seconds of stream time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum TimeSelection {
    /// `[start, end)`; either end may be infinite (open).
    Range { start: f64, end: f64 },
    /// The last `seconds` up to the newest frame.
    Lookback { seconds: f64 },
    /// From `start` up to the newest frame.
    ToHead { start: f64 },
}

/// A signal read under way: the span served (fixed once planned), the board's lanes already
/// read, and what the amplifier rows are read from, block by block, while earlier blocks are
/// sent.
#[derive(Debug)]
pub struct SignalRead {
    /// The cache the rows come from.
    pub cache: Arc<PrimaryCache>,
    /// The frames served.
    pub span: FrameSpan,
    /// Frames per second of the stream.
    pub sample_rate_hz: f64,
    /// Wall-clock time of the first frame served.
    pub wall_time: SystemTime,
    /// Analog-input and digital rows (small: read at once). Its amplifier matrix is empty.
    pub board: Snapshot,
    /// Where the rows' buffers come from and go back to.
    pub pool: Arc<BufferPool>,
}

impl SignalRead {
    /// Reads the amplifier rows of `channels` for the span (see [`amplifier_rows`]).
    pub fn amplifier_rows(&self, channels: &[usize]) -> Result<Matrix, EngineError> {
        amplifier_rows(&self.cache, self.span, channels, &self.pool).map_err(|e| EngineError::TimeRangeNotHeld {
            asked: seconds(self.span, self.sample_rate_hz),
            held: format!("less, by the time it was read ({e})"),
        })
    }
}

impl Engine {
    /// Where signal replies take their buffers from, and give them back to once sent.
    pub fn snapshot_buffers(&self) -> &Arc<BufferPool> {
        &self.snapshot_buffers
    }

    /// Plans a read of `time` for `amplifier_rows` amplifier rows plus the board channels of
    /// `board` (validated by the caller against the device): fixes the span served, checks
    /// the reply's size, reads the board's lanes. With `filtered`, the amplifier rows and the
    /// analog inputs come from the filtered cache (the signal after stage 2), whose frames are
    /// numbered as the primary cache's, and the span is what both hold. Never takes the state
    /// lock.
    pub fn signal_read(
        &self,
        time: TimeSelection,
        amplifier_rows: usize,
        board: &ChannelPick,
        filtered: bool,
    ) -> Result<SignalRead, EngineError> {
        let view = self.view();
        let (Some(cache), Some(started_at)) = (view.cache.as_ref(), view.stream_started_at) else {
            return Err(EngineError::NotStreaming { needed: "reading signals" });
        };
        let rate = cache.sample_rate_hz();
        let head = cache.head();
        let mut asked = clear_of_the_writer(frames_of(time, head, rate), cache.oldest(), head, cache.capacity_frames());
        let mut rows_from = Arc::clone(cache);
        if filtered {
            let Some(outputs) = view.processing.as_ref() else {
                return Err(EngineError::Processing(crate::processing::ProcessingError::Off));
            };
            // The primary cache itself while no stage 2 filter has changed the signal.
            let f = outputs.filtered.current();
            let oldest = outputs.filtered.oldest();
            let asked_filtered = clear_of_the_writer(asked, oldest, f.head(), outputs.filtered.capacity_frames());
            let clipped = FrameSpan { start: asked_filtered.start, end: asked_filtered.end.min(f.head()) };
            if clipped.is_empty() {
                let held = FrameSpan { start: oldest, end: f.head() };
                return Err(EngineError::TimeRangeNotHeld {
                    asked: describe(time),
                    held: format!(
                        "{} of filtered signal (the filtered cache; processing.filtered_cache_seconds sets its length)",
                        if held.is_empty() { "nothing yet".into() } else { seconds(held, rate) }
                    ),
                });
            }
            asked = clipped;
            rows_from = Arc::clone(f);
        }
        let served = FrameSpan { start: asked.start.max(cache.oldest()), end: asked.end.min(head) };
        let bytes = served.len() * (amplifier_rows + board.rows()) as u64 * 4;
        if bytes > MAX_REPLY_BYTES {
            return Err(EngineError::ReplyTooLarge { bytes, limit: MAX_REPLY_BYTES });
        }
        let board_only = ChannelPick { amplifier: Vec::new(), ..board.clone() };
        let board = snapshot(&rows_from, asked, &board_only, &self.snapshot_buffers).map_err(|e| match e {
            SnapshotError::NotHeld { held, .. } => EngineError::TimeRangeNotHeld {
                asked: describe(time),
                held: if held.is_empty() { "nothing yet".into() } else { seconds(held, rate) },
            },
            SnapshotError::Overrun { .. } => EngineError::TimeRangeNotHeld {
                asked: describe(time),
                held: format!("only frames the writer is about to overwrite ({e})"),
            },
        })?;
        Ok(SignalRead {
            cache: rows_from,
            span: board.span,
            sample_rate_hz: rate,
            wall_time: started_at + Duration::from_secs_f64(board.span.start as f64 / rate),
            board,
            pool: Arc::clone(&self.snapshot_buffers),
        })
    }
}

/// A span that reaches back past `oldest`, the oldest frame a cache of `capacity_frames` with
/// newest frame `head - 1` holds, starts at it or, once the cache is full, a little after it (a
/// twentieth of the cache, and at most half of what is left of the span): the writer of a full
/// cache overwrites the oldest frames next, and a read starting exactly there would race it
/// and fail for frames that were held when it was asked. The reply says what was served.
fn clear_of_the_writer(asked: FrameSpan, oldest: u64, head: u64, capacity_frames: usize) -> FrameSpan {
    if asked.start >= oldest {
        return asked;
    }
    if head - oldest < capacity_frames as u64 {
        // Not full (a cache that began mid-stream): nothing is overwritten yet.
        return FrameSpan { start: oldest, end: asked.end };
    }
    let margin = (capacity_frames as u64 / 20).min(asked.end.saturating_sub(oldest) / 2);
    FrameSpan { start: oldest + margin, end: asked.end }
}

fn seconds(span: FrameSpan, rate: f64) -> String {
    format!("[{:.6}, {:.6}) s", span.start as f64 / rate, span.end as f64 / rate)
}

/// The frames `time` names when the newest frame is `head - 1` (clipping comes later).
fn frames_of(time: TimeSelection, head: u64, rate: f64) -> FrameSpan {
    let frame = |seconds: f64| -> u64 {
        if seconds <= 0.0 {
            0
        } else if seconds.is_infinite() {
            u64::MAX
        } else {
            (seconds * rate).round().min(u64::MAX as f64) as u64
        }
    };
    match time {
        TimeSelection::Range { start, end } => FrameSpan { start: frame(start), end: frame(end) },
        TimeSelection::Lookback { seconds } => FrameSpan { start: head.saturating_sub(frame(seconds)), end: head },
        TimeSelection::ToHead { start } => FrameSpan { start: frame(start), end: head },
    }
}

fn describe(time: TimeSelection) -> String {
    match time {
        TimeSelection::Range { start, end } => format!("[{start}, {end}) s"),
        TimeSelection::Lookback { seconds } => format!("the last {seconds} s"),
        TimeSelection::ToHead { start } => format!("[{start} s, newest frame]"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seconds_become_frames_and_open_ends_reach_the_head() {
        let rate = 1000.0;
        let range = |start, end| frames_of(TimeSelection::Range { start, end }, 5000, rate);
        assert_eq!(range(1.0, 2.5), FrameSpan { start: 1000, end: 2500 });
        assert_eq!(range(f64::NEG_INFINITY, f64::INFINITY), FrameSpan { start: 0, end: u64::MAX });
        assert_eq!(
            frames_of(TimeSelection::Lookback { seconds: 0.5 }, 5000, rate),
            FrameSpan { start: 4500, end: 5000 }
        );
        assert_eq!(frames_of(TimeSelection::Lookback { seconds: 60.0 }, 5000, rate), FrameSpan { start: 0, end: 5000 });
        assert_eq!(frames_of(TimeSelection::ToHead { start: 4.0 }, 5000, rate), FrameSpan { start: 4000, end: 5000 });
    }
}
