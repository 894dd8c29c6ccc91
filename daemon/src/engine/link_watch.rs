//! What a board's USB link lost or nearly lost, said in the journal and in status as it
//! happens: corrupt reads, frames missing from the board's sample index, a FIFO filling up
//! (the host falling behind, before it loses anything). The counters live on the
//! acquisition thread's side (`BoardHealth`); this compares them with what was last said.

use std::sync::Arc;

use ephysd_drivers::rhythm::board::BoardHealth;

/// The counts last said, for one opened board.
#[derive(Default)]
pub struct LinkWatch {
    /// Identifies the board the counts belong to (its health record).
    board: usize,
    corrupt: u64,
    lost: u64,
    warnings: u64,
}

impl LinkWatch {
    /// Lines describing what happened since the last call (none when nothing did).
    pub fn check(&mut self, device: &str, health: &Arc<BoardHealth>) -> Vec<String> {
        let board = Arc::as_ptr(health) as usize;
        if board != self.board {
            *self = LinkWatch { board, ..LinkWatch::default() };
        }
        let mut lines = Vec::new();
        let (corrupt, lost, warnings) = (health.corrupt_reads(), health.frames_lost(), health.fifo_warnings());
        if corrupt > self.corrupt {
            lines.push(format!(
                "{device}: {} corrupt USB read(s): the frames skipped are marked in the recording's /gaps ({corrupt} since opened)",
                corrupt - self.corrupt
            ));
        }
        if lost > self.lost {
            lines.push(format!(
                "{device}: {} frame(s) lost on the USB link, marked in the recording's /gaps ({lost} since opened)",
                lost - self.lost
            ));
        }
        if warnings > self.warnings {
            lines.push(format!(
                "{device}: the board's FIFO passed half full (peak {}%): the host is falling behind and frames will be lost if it goes on",
                health.fifo_peak_permille() / 10
            ));
        }
        (self.corrupt, self.lost, self.warnings) = (corrupt, lost, warnings);
        lines
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::Ordering;

    use super::*;

    #[test]
    fn each_rise_is_said_once_and_a_new_board_starts_afresh() {
        let health = Arc::new(BoardHealth::default());
        let mut watch = LinkWatch::default();
        assert!(watch.check("board", &health).is_empty());
        health.corrupt_reads.fetch_add(1, Ordering::Relaxed);
        health.frames_lost.fetch_add(3, Ordering::Relaxed);
        health.fifo_warnings.fetch_add(1, Ordering::Relaxed);
        health.fifo_peak_permille.fetch_max(620, Ordering::Relaxed);
        let lines = watch.check("board", &health);
        assert_eq!(lines.len(), 3, "{lines:?}");
        assert!(lines[1].contains("3 frame(s) lost") && lines[2].contains("peak 62%"), "{lines:?}");
        assert!(watch.check("board", &health).is_empty());
        let other = Arc::new(BoardHealth::default());
        other.frames_lost.fetch_add(1, Ordering::Relaxed);
        assert_eq!(watch.check("board", &other).len(), 1);
    }
}
