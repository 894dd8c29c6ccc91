//! Unix signals, turned into daemon events.
//!
//! SIGTERM/SIGINT ask for a clean stop (recordings finalized); a second one exits at once, for
//! the operator whose clean stop is itself stuck. SIGHUP asks for a reload of the live keys.
//! SIGXFSZ (a write past a file-size limit) must not kill the daemon: the write then fails with
//! EFBIG, which ends the recording cleanly while acquisition goes on.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM, SIGXFSZ};
use signal_hook::iterator::Signals;
use tokio::sync::mpsc;

/// What a signal asks the daemon to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SignalEvent {
    Shutdown(i32),
    Reload,
}

/// Exit status used when a second stop signal cuts a clean stop short.
pub const FORCED_EXIT_CODE: i32 = 2;

/// Starts a thread that forwards signals as events.
pub fn listen() -> std::io::Result<mpsc::UnboundedReceiver<SignalEvent>> {
    // Handled (so not fatal) and otherwise ignored: the failed write says what happened.
    signal_hook::flag::register(SIGXFSZ, Arc::new(AtomicBool::new(false)))?;
    let mut signals = Signals::new([SIGTERM, SIGINT, SIGHUP])?;
    let (tx, rx) = mpsc::unbounded_channel();
    std::thread::Builder::new().name("ephysd-signals".into()).spawn(move || {
        let mut stopping = false;
        for signal in signals.forever() {
            match signal {
                SIGHUP => {
                    let _ = tx.send(SignalEvent::Reload);
                }
                s if stopping => {
                    eprintln!("ephysd: second stop signal ({s}): exiting at once");
                    std::process::exit(FORCED_EXIT_CODE);
                }
                s => {
                    stopping = true;
                    let _ = tx.send(SignalEvent::Shutdown(s));
                }
            }
        }
    })?;
    Ok(rx)
}
