//! The daemon from start to stop, in the order it happens.

use std::sync::Arc;
use std::time::Duration;

use ephysd_pipeline::{Acquisition, Liveness, PipelineCounters, WatchdogGate};

use crate::config::{self, ConfigError, ConfigSource, Settings};
use crate::engine::{Engine, EngineError};
use crate::grpc;
use crate::logging::{self, LogControl};
use crate::notify::{self, Notifier};
use crate::signals::{self, SignalEvent};

/// Why the daemon could not start or run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    #[error("{0}")]
    Config(#[from] ConfigError),
    #[error("{0}")]
    Serve(#[from] grpc::ServeError),
    #[error("{0}")]
    Credentials(#[from] grpc::security::CredentialError),
    #[error("cannot open the device: {0}")]
    Device(#[from] EngineError),
    #[error("cannot start: {0}")]
    Startup(String),
}

/// How long a clean stop may take before the daemon gives up waiting for the gRPC servers.
const SERVER_DRAIN: Duration = Duration::from_secs(2);

/// Runs the daemon until SIGTERM/SIGINT. Returns once everything is stopped and finalized.
pub fn run(source: &ConfigSource) -> Result<(), DaemonError> {
    let settings = config::load(source)?;
    let spec = settings.device_spec()?;
    let log = logging::init(&settings.log.level, settings.log.format == "json");
    config::prepare_recording_dir(&settings.recording.base_path)?;
    let credentials = grpc::security::Credentials::load(&settings.server)?;
    let signal_events = signals::listen().map_err(|e| DaemonError::Startup(format!("signal handlers: {e}")))?;
    tracing::info!(version = crate::VERSION, "ephysd starting");

    let counters = Arc::new(PipelineCounters::default());
    let (acquisition, outcome) = Acquisition::spawn(settings.placement(), Arc::clone(&counters))
        .map_err(|e| DaemonError::Startup(format!("acquisition thread: {e}")))?;
    for warning in &outcome.warnings {
        tracing::warn!("{warning}");
    }
    tracing::info!(core = ?outcome.pinned_core, fifo_priority = ?outcome.fifo_priority, "acquisition thread ready");

    if settings.recording.recover_on_start {
        for (path, result) in crate::recorder::recover_unclosed(&settings.recording.base_path) {
            match result {
                Ok(r) => tracing::warn!(
                    path = %path.display(),
                    frames = r.frames,
                    trimmed = r.trimmed_frames,
                    "recovered a recording a crash left open ({:.1} s kept)",
                    r.duration_seconds
                ),
                Err(e) => {
                    tracing::error!(path = %path.display(), "could not recover a recording a crash left open: {}", e.summary_line())
                }
            }
        }
    }
    let notifier = Notifier::from_env();
    let engine = Engine::new(&settings, &spec, acquisition, notifier.clone())?;
    tracing::info!(device = %engine.description().name, "device opened");
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name("ephysd-control")
        .enable_all()
        .build()
        .map_err(|e| DaemonError::Startup(format!("async runtime: {e}")))?;
    let result =
        runtime.block_on(control_plane(settings, credentials, source.clone(), engine, notifier, log, signal_events));
    runtime.shutdown_timeout(Duration::from_millis(500));
    result
}

async fn control_plane(
    settings: Settings,
    credentials: grpc::security::Credentials,
    source: ConfigSource,
    engine: Arc<Engine>,
    notifier: Notifier,
    log: LogControl,
    mut signal_events: tokio::sync::mpsc::UnboundedReceiver<SignalEvent>,
) -> Result<(), DaemonError> {
    // What the daemon starts by itself is running before anyone can ask (and before READY).
    let autostart = settings.recording.autostart();
    let starting = Arc::clone(&engine);
    match tokio::task::spawn_blocking(move || starting.autostart(autostart)).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => tracing::error!("recording.autostart = {autostart:?} failed: {e}"),
        Err(e) => tracing::error!("recording.autostart = {autostart:?} failed: {e}"),
    }
    let port_sets = grpc::bind(&settings.server).await?;
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let servers = grpc::serve(port_sets, credentials, Arc::clone(&engine), stop_rx.clone());
    let watchdog = notify::watchdog_period()
        .map(|period| tokio::spawn(watchdog_loop(period, Arc::clone(&engine), notifier.clone(), stop_rx)));
    notifier.ready();
    notifier.status(&format!(
        "idle: Allego services on {}:{}-{}",
        settings.server.bind,
        settings.server.base_port,
        settings.server.base_port + 4
    ));
    tracing::info!(
        bind = %settings.server.bind,
        first_port = settings.server.base_port,
        tls = settings.server.tls_enabled(),
        token = settings.server.token_enabled(),
        loopback_plain = settings.server.serves_loopback_plain(),
        "gRPC services listening"
    );

    let mut current = settings;
    while let Some(event) = signal_events.recv().await {
        match event {
            SignalEvent::Reload => {
                notifier.reloading();
                // Reloading reads files and takes the engine's state lock (which a finalizing
                // recording may hold for a while): off the async workers.
                let (source, engine, log, running) =
                    (source.clone(), Arc::clone(&engine), log.clone(), current.clone());
                current = match tokio::task::spawn_blocking(move || reload(&source, running, &engine, &log)).await {
                    Ok(next) => next,
                    Err(e) => {
                        tracing::error!("reload failed: {e}");
                        current
                    }
                };
                notifier.ready();
            }
            SignalEvent::Shutdown(signal) => {
                tracing::info!(signal, "stopping");
                break;
            }
        }
    }

    notifier.stopping();
    notifier.status("stopping: finalizing recordings");
    let engine_for_stop = Arc::clone(&engine);
    let _ = tokio::task::spawn_blocking(move || engine_for_stop.shutdown()).await;
    let _ = stop_tx.send(true);
    if tokio::time::timeout(SERVER_DRAIN, servers).await.is_err() {
        tracing::warn!("gRPC servers did not drain in {SERVER_DRAIN:?}; closing anyway");
    }
    if let Some(w) = watchdog {
        w.abort();
    }
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Re-reads the configuration and applies the keys that are safe to change live.
fn reload(source: &ConfigSource, current: Settings, engine: &Engine, log: &LogControl) -> Settings {
    let next = match config::load(source) {
        Ok(s) => s,
        Err(e) => {
            tracing::error!("reload refused, keeping the running configuration: {e}");
            return current;
        }
    };
    let mut applied = Vec::new();
    if next.log.level != current.log.level {
        match log.set_level(&next.log.level) {
            Ok(what) => applied.push(what),
            Err(e) => tracing::error!("log.level not applied: {e}"),
        }
    }
    if next.recording != current.recording {
        if let Err(e) = config::prepare_recording_dir(&next.recording.base_path) {
            tracing::error!("recording keys not applied: {e}");
        } else {
            applied.extend(engine.reload_recording(&next.recording, &current.recording));
        }
    }
    let restart_needed: Vec<&str> = [
        ("server", next.server != current.server),
        ("device", next.device != current.device),
        ("cache", next.cache != current.cache),
        ("realtime", next.realtime != current.realtime),
        ("log.format", next.log.format != current.log.format),
    ]
    .iter()
    .filter(|(_, changed)| *changed)
    .map(|(name, _)| *name)
    .collect();
    if !restart_needed.is_empty() {
        tracing::warn!("reload: changes to {} take effect after a restart", restart_needed.join(", "));
    }
    if applied.is_empty() {
        tracing::info!("reload applied: nothing (no live key changed)");
    } else {
        tracing::info!("reload applied: {}", applied.join("; "));
    }
    let mut kept = next;
    // Keys that need a restart keep their running values, so the next reload compares fairly.
    kept.server = current.server;
    kept.device = current.device;
    kept.cache = current.cache;
    kept.realtime = current.realtime;
    kept.log.format = current.log.format;
    kept
}

/// Pings the systemd watchdog while, and only while, the acquisition thread's heartbeat moves.
async fn watchdog_loop(
    period: Duration,
    engine: Arc<Engine>,
    notifier: Notifier,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let check_every = period / 4;
    let stall_after = (period / 2).min(Duration::from_secs(2));
    let beat = || engine.counters().heartbeat.load(std::sync::atomic::Ordering::Relaxed);
    let mut gate = WatchdogGate::new(stall_after, beat(), std::time::Instant::now());
    let mut was_stalled = false;
    loop {
        tokio::select! {
            _ = tokio::time::sleep(check_every) => {}
            _ = stop.changed() => return,
        }
        match gate.check(beat(), std::time::Instant::now()) {
            Liveness::Alive => {
                if was_stalled {
                    tracing::warn!("acquisition thread is alive again");
                    was_stalled = false;
                }
                notifier.watchdog();
            }
            Liveness::Stalled { for_ms } => {
                if !was_stalled {
                    tracing::error!(for_ms, "acquisition thread stalled; withholding watchdog pings");
                    notifier.status(&format!("error: acquisition thread stalled for {for_ms} ms"));
                    was_stalled = true;
                }
            }
        }
    }
}
