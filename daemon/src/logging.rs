//! Logging: tracing to stderr (the journal under systemd), text or JSON, level reloadable.

use std::io::IsTerminal;

use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{fmt, reload, EnvFilter, Registry};

/// Changes the log level of the running daemon (SIGHUP). Cheap to clone.
#[derive(Clone)]
pub struct LogControl {
    handle: reload::Handle<EnvFilter, Registry>,
    env_override: bool,
}

impl LogControl {
    /// Applies `level` unless RUST_LOG governs the filter. Returns what it did, for the log.
    pub fn set_level(&self, level: &str) -> Result<String, String> {
        if self.env_override {
            return Ok("log.level unchanged: RUST_LOG takes precedence".into());
        }
        let filter = EnvFilter::try_new(level).map_err(|e| e.to_string())?;
        self.handle.reload(filter).map_err(|e| e.to_string())?;
        Ok(format!("log.level = {level}"))
    }
}

/// Installs the global subscriber. `RUST_LOG`, when set, wins over `level`.
pub fn init(level: &str, json: bool) -> LogControl {
    let env = std::env::var("RUST_LOG").ok().filter(|v| !v.is_empty());
    let filter = env.as_deref().and_then(|v| EnvFilter::try_new(v).ok()).unwrap_or_else(|| EnvFilter::new(level));
    let (filter, handle) = reload::Layer::new(filter);
    let registry = tracing_subscriber::registry().with(filter);
    // Colour only on a terminal: the journal and log files get plain text.
    let ansi = std::io::stderr().is_terminal();
    let result = if json {
        registry.with(fmt::layer().json().with_writer(std::io::stderr)).try_init()
    } else {
        registry.with(fmt::layer().with_ansi(ansi).with_writer(std::io::stderr)).try_init()
    };
    if let Err(e) = result {
        eprintln!("ephysd: logging already initialised: {e}");
    }
    LogControl { handle, env_override: env.is_some() }
}
