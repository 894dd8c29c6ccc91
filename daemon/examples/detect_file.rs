//! Runs the daemon's real-time processing over a recording's `/samples`, offline, and says how
//! fast it went: the figure `benches/detection_side_by_side.py` sets beside SpikeInterface.
//!
//! ```text
//! detect_file <recording.h5> [--chain production|highpass-detect]... [--out <prefix>]
//!             [--seconds <s>] [--frames-per-block <n>]
//! ```
//!
//! Chains (each given runs in turn over the same samples; default `production`), built with the
//! effective configuration (the built-in defaults and any `EPHYSD_PROCESSING__*` variables):
//!
//! - `production`: what the daemon runs for the simulated device
//!   (`Processing::chain_for_stream`): hardware and stage-1 filters (empty by default) and the
//!   write-back of their output into the block, stage-2 filters (empty), the filtered tap, the
//!   spike-band highpass (300 Hz Butterworth, order 2) and the detector (5 × the noise
//!   estimate);
//! - `highpass-detect`: the spike-band highpass and the detector with the same parameters,
//!   nothing else: the work SpikeInterface's `highpass_filter` + `detect_peaks` do.
//!
//! `/samples` is read into memory first; then each block (128 frames by default, as the device
//! delivers them) is copied into a frame block outside the timing and run through the chain on
//! this one thread inside it, as the acquisition thread runs it (`StageChain::run_block`).
//! Spikes are drained from the spike ring after each block, outside the timing.
//!
//! Prints one JSON object per chain: its stages, time, × real time, ns per sample, block time
//! percentiles, the spike count, and the design noise rms of the simulated device (`sim-spikes`,
//! what scoring against `/ground_truth` divides amplitudes by). With `--out`, writes each
//! chain's spikes to `<prefix>.<chain>.bin` as two little-endian `i64`s per spike, frame (row
//! of `/samples`, the threshold crossing) and channel (column).
//!
//! Errors go to stderr with exit code 2.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, Instant};

use ephysd::config::{load, ConfigSource, Settings};
use ephysd::processing::{ChannelDetect, Processing};
use ephysd_drivers::sim::{SimConfig, SimulatedSource};
use ephysd_drivers::{open, DeviceDescription, DeviceSpec, FrameBlock};
use ephysd_hdf5::RecordingReader;
use ephysd_pipeline::detect::{DetectorStage, Spike};
use ephysd_pipeline::dsp::{design, FilterFamily, FilterKind, FilterPlan, FilterSpec, FilterStage};
use ephysd_pipeline::{EventRing, PrimaryCache, StageChain};
use serde_json::json;

/// Spikes taken from the ring per read.
const BATCH: usize = 1024;
const CHAINS: [&str; 2] = ["production", "highpass-detect"];

struct Args {
    recording: PathBuf,
    chains: Vec<String>,
    out: Option<PathBuf>,
    /// Only the first this many seconds of the recording.
    seconds: Option<f64>,
    frames_per_block: usize,
}

fn parse(args: &[String]) -> Result<Args, String> {
    let usage = "usage: detect_file <recording.h5> [--chain production|highpass-detect]... [--out <prefix>] \
                 [--seconds <s>] [--frames-per-block <n>]";
    let mut recording = None;
    let mut chains = Vec::new();
    let mut out = None;
    let mut seconds = None;
    let mut frames_per_block = 128;
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match a.as_str() {
            "--chain" => {
                let v = it.next().ok_or(usage)?;
                if !CHAINS.contains(&v.as_str()) {
                    return Err(format!("--chain {v}: allowed {}", CHAINS.join(", ")));
                }
                chains.push(v.clone());
            }
            "--out" => out = Some(PathBuf::from(it.next().ok_or(usage)?)),
            "--seconds" => {
                let v = it.next().ok_or(usage)?;
                let s = v.parse::<f64>().ok().filter(|s| *s > 0.0);
                seconds = Some(s.ok_or(format!("--seconds {v}: allowed above 0"))?);
            }
            "--frames-per-block" => {
                let v = it.next().ok_or(usage)?;
                frames_per_block = v.parse().map_err(|_| format!("--frames-per-block {v}: allowed 16..=4096"))?;
            }
            _ if recording.is_none() && !a.starts_with("--") => recording = Some(PathBuf::from(a)),
            _ => return Err(usage.to_string()),
        }
    }
    if chains.is_empty() {
        chains.push(CHAINS[0].to_string());
    }
    Ok(Args { recording: recording.ok_or(usage)?, chains, out, seconds, frames_per_block })
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match parse(&args).and_then(|a| run(&a)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("detect_file: {e}");
            ExitCode::from(2)
        }
    }
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

/// A chain to run, its spike ring, and what must live as long as it (the control plane's
/// handles).
struct Built {
    chain: StageChain,
    spikes: Arc<EventRing<Spike>>,
    _processing: Option<Processing>,
}

fn build(name: &str, settings: &Settings, description: &DeviceDescription) -> Result<Built, String> {
    let p = &settings.processing;
    if name == "production" {
        let mut processing = Processing::new(p, settings.cache.seconds, description);
        // Nothing is published here: the filtered tap only reads the primary cache's head.
        let layout = description.layout;
        let primary = PrimaryCache::new(layout, layout.frames_per_block, description.sample_rate_hz).0;
        let chain = processing.chain_for_stream(description, &primary).map_err(|e| e.to_string())?;
        if chain.is_empty() {
            return Err("processing is off (processing.detection = false)".into());
        }
        let spikes = processing.outputs().expect("processing runs").spikes;
        return Ok(Built { chain, spikes, _processing: Some(processing) });
    }
    let (channels, rate) = (description.layout.amplifier_channels, description.sample_rate_hz);
    let spec = FilterSpec {
        kind: FilterKind::Highpass { cutoff_hz: p.spike_band_hz },
        family: FilterFamily::Butterworth,
        order: p.spike_band_order,
    };
    let mut plan = FilterPlan::new(channels);
    let all: Vec<usize> = (0..channels).collect();
    plan.filter(&all, &design(&spec, rate).map_err(|e| e.to_string())?).map_err(|e| e.to_string())?;
    // The control handles are dropped: nothing changes the stages while they run.
    let (filter, _) = FilterStage::new("spike sorter filter", plan);
    let (writer, spikes) = EventRing::new(p.spike_ring);
    let params = ChannelDetect::with_threshold_sd(p.threshold_sd).params(true);
    let (detector, _) =
        DetectorStage::new(channels, rate, vec![params; channels], writer).map_err(|e| e.to_string())?;
    let chain = StageChain::new(description.layout, vec![Box::new(filter), Box::new(detector)]);
    Ok(Built { chain, spikes, _processing: None })
}

fn run(args: &Args) -> Result<(), String> {
    let settings = load(&ConfigSource::from_process(None)).map_err(|e| e.to_string())?;
    let reader = RecordingReader::open(&args.recording).map_err(|e| e.to_string())?;
    let info = reader.info().clone();
    let (channels, rate) = (info.channel_count, info.frames_per_second);
    let all = reader.frames() as usize;
    let frames = args.seconds.map_or(all, |s| all.min((s * rate).round() as usize));
    if frames == 0 {
        return Err(format!("{}: no /samples", args.recording.display()));
    }

    // The device the recording came from, as the daemon describes it: its description decides
    // the chain (the simulated device's hardware stage, the spike band per port).
    let config = SimConfig {
        amplifier_channels: channels,
        sample_rate_hz: rate,
        accelerated: true,
        frames_per_block: args.frames_per_block,
        ..SimConfig::default()
    };
    let noise_rms_uv = SimulatedSource::new(config.clone()).map_err(|e| e.to_string())?.noise_rms_uv();
    let device = open(&DeviceSpec::Simulated(config)).map_err(|e| e.to_string())?;
    let description = device.description().clone();

    let started = Instant::now();
    let samples = reader.read_samples(0, frames).map_err(|e| e.to_string())?;
    let read = started.elapsed();

    for name in &args.chains {
        let Built { mut chain, spikes: ring, _processing } = build(name, &settings, &description)?;
        let names: Vec<String> = chain.names().map(str::to_string).collect();
        let mut spike_reader = ring.reader_at(0, BATCH);
        let mut block = FrameBlock::new(description.layout);
        let per_block = args.frames_per_block;
        let mut times = Vec::with_capacity(frames.div_ceil(per_block));
        let mut spikes: Vec<(u64, u16)> = Vec::new();
        let mut lost = 0;
        for first in (0..frames).step_by(per_block) {
            let n = per_block.min(frames - first);
            block.frames = n;
            for (i, f) in block.frame_index[..n].iter_mut().enumerate() {
                *f = (first + i) as u64;
            }
            block.amplifier[..n * channels].copy_from_slice(&samples[first * channels..(first + n) * channels]);
            let start = Instant::now();
            chain.run_block(&mut block);
            times.push(start.elapsed());
            loop {
                let got = spike_reader.read(&ring, |s| spikes.push((s.frame, s.channel)));
                lost += got.lost;
                if got.events == 0 {
                    break;
                }
            }
        }
        let total: Duration = times.iter().sum();
        times.sort_unstable();
        let at = |q: f64| micros(times[((times.len() as f64 * q).ceil() as usize).clamp(1, times.len()) - 1]);
        let seconds = frames as f64 / rate;

        if let Some(prefix) = &args.out {
            let path = PathBuf::from(format!("{}.{name}.bin", prefix.display()));
            let mut bytes = Vec::with_capacity(spikes.len() * 16);
            for &(frame, channel) in &spikes {
                bytes.extend_from_slice(&(frame as i64).to_le_bytes());
                bytes.extend_from_slice(&i64::from(channel).to_le_bytes());
            }
            std::fs::write(&path, bytes).map_err(|e| format!("{}: {e}", path.display()))?;
        }
        let report = json!({
            "chain": name,
            "recording": args.recording.display().to_string(),
            "channels": channels,
            "frames": frames,
            "signal_s": seconds,
            "frames_per_block": per_block,
            "stages": names,
            "spike_band_hz": settings.processing.spike_band_hz,
            "spike_band_order": settings.processing.spike_band_order,
            "threshold_sd": settings.processing.threshold_sd,
            "read_s": read.as_secs_f64(),
            "chain_s": total.as_secs_f64(),
            "x_real_time": seconds / total.as_secs_f64(),
            "ns_per_sample": total.as_secs_f64() * 1e9 / (frames * channels) as f64,
            "block_us": { "p50": at(0.5), "p99": at(0.99), "p999": at(0.999), "max": at(1.0) },
            "spikes": spikes.len(),
            "spikes_lost": lost,
            "sim_noise_rms_uv": noise_rms_uv,
        });
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{report}").map_err(|e| e.to_string())?;
    }
    Ok(())
}
