//! Spike detection measured against the simulated device's ground truth, through the whole
//! daemon: the real process streams the simulated rig through the spike-band filter and the
//! detector, records `/spikes` and `/ground_truth` into one file, and the file is scored.
//!
//! The goal: for every unit whose largest spike is at least 5× the noise rms, recall and
//! precision both at least 0.95, matching within ±0.5 ms.

mod common;

use std::time::{Duration, Instant};

use common::{h5_files, signal, wait_exit, TestDaemon};
use ephysd::processing::score::{score, Detection, TrueSpike, UnitScore};
use ephysd_drivers::sim::{SimConfig, SimMode, SimulatedSource};
use ephysd_hdf5::{RecordingReader, SPIKE_SNIPPET_SAMPLES};
use ephysd_proto::allego::allego_core_client::AllegoCoreClient;
use ephysd_proto::allego::{RecordMode, SetRecordRequest, StandardRequest};

const CHANNELS: usize = 32;
const SECONDS: f64 = 40.0;
const RATE: f64 = 30_000.0;

/// Records `SECONDS` of the accelerated simulated device with detection on (the defaults).
fn record(d: &mut TestDaemon) {
    let mut cmd = d.command();
    cmd.env("EPHYSD_DEVICE__CHANNELS", CHANNELS.to_string())
        .env("EPHYSD_DEVICE__ACCELERATED", "true")
        .env("EPHYSD_DEVICE__SEED", "11")
        .env("EPHYSD_RECORDING__MIN_FREE_MB", "0")
        .env("EPHYSD_RECORDING__RECORDING_TYPE", "continuous_and_spikes");
    let mut child = cmd.spawn().unwrap();
    common::wait_for_port(d.base_port + 4, &mut child, Duration::from_secs(20));
    let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    rt.block_on(async {
        let mut core = AllegoCoreClient::connect(d.endpoint(0)).await.unwrap();
        let set = |on: bool| SetRecordRequest {
            mode: if on { RecordMode::ROn } else { RecordMode::ROff } as i32,
            port: None,
        };
        core.set_record_state(set(true)).await.unwrap();
        let deadline = Instant::now() + Duration::from_secs(180);
        while core.get_status(StandardRequest::default()).await.unwrap().into_inner().recording.duration < SECONDS {
            assert!(Instant::now() < deadline, "the recording did not reach {SECONDS} s: {}", d.log_text());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        core.set_record_state(set(false)).await.unwrap();
    });
    signal(&child, libc::SIGTERM);
    let (status, _) = wait_exit(&mut child, Duration::from_secs(20));
    assert_eq!(status.code(), Some(0), "{}", d.log_text());
}

fn noise_rms_uv() -> f64 {
    SimulatedSource::new(SimConfig {
        mode: SimMode::Spikes,
        amplifier_channels: CHANNELS,
        accelerated: true,
        seed: 11,
        ..SimConfig::default()
    })
    .unwrap()
    .noise_rms_uv()
}

fn table(scores: &[UnitScore]) -> String {
    scores
        .iter()
        .map(|u| {
            format!(
                "unit {:3} ch {:3} snr {:5.1} spikes {:4} recall {:.3} precision {:.3} (false {})",
                u.unit,
                u.channel,
                u.snr,
                u.spikes,
                u.recall(),
                u.precision(),
                u.false_detections
            )
        })
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn detection_finds_the_simulated_units_with_recall_and_precision_above_0_95() {
    let mut d = TestDaemon::new();
    record(&mut d);
    let files = h5_files(&d.recordings());
    assert_eq!(files.len(), 1, "{files:?}");
    let reader = RecordingReader::open(&files[0]).unwrap();
    let spikes = reader.read_spikes().unwrap();
    let truth = reader.read_ground_truth().unwrap();
    assert!(!truth.is_empty() && !spikes.is_empty(), "{} true spikes, {} detected", truth.len(), spikes.len());

    // Every snippet is the CL API's: 75 samples, mean-centred, its trough after the crossing.
    // Every snippet is the CL API's: 75 samples, mean-centred; nearly all have their trough
    // just after the crossing (sample 25), the rest a neighbour's spike or an overlap.
    let mut trough_after_crossing = 0;
    for s in &spikes {
        assert_eq!(s.samples.len(), SPIKE_SNIPPET_SAMPLES);
        let mean = s.samples.iter().map(|&v| f64::from(v)).sum::<f64>() / SPIKE_SNIPPET_SAMPLES as f64;
        assert!(mean.abs() < 1e-3, "snippet mean {mean}");
        let trough = s.samples.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).unwrap().0;
        trough_after_crossing += usize::from((25..40).contains(&trough));
    }
    assert!(
        trough_after_crossing * 10 >= spikes.len() * 9,
        "{trough_after_crossing} of {} troughs after the crossing",
        spikes.len()
    );
    let frames = reader.info().duration_frames as i64;
    assert!(spikes.iter().all(|s| (0..frames).contains(&s.timestamp)), "a spike outside the recording");

    let truth: Vec<TrueSpike> = truth
        .iter()
        .map(|t| TrueSpike {
            frame: t.timestamp,
            channel: usize::from(t.channel),
            unit: t.unit,
            amplitude_uv: f64::from(t.peak_uv.abs()),
        })
        .collect();
    let detections: Vec<Detection> =
        spikes.iter().map(|s| Detection { frame: s.timestamp, channel: usize::from(s.channel) }).collect();
    let tolerance = (0.0005 * RATE).round() as i64;
    // Skip the first second: the noise estimate needs it before thresholds exist.
    let settled = RATE as i64;
    let truth: Vec<TrueSpike> = truth.into_iter().filter(|t| t.frame >= settled).collect();
    let detections: Vec<Detection> = detections.into_iter().filter(|d| d.frame >= settled).collect();
    let scores = score(&truth, &detections, tolerance, 4, noise_rms_uv());
    let report = table(&scores);
    println!("{report}");
    let strong: Vec<&UnitScore> = scores.iter().filter(|u| u.snr >= 5.0).collect();
    assert!(strong.len() >= 3, "too few strong units to judge:\n{report}");
    for u in &strong {
        assert!(u.recall() >= 0.95 && u.precision() >= 0.95, "unit {} below 0.95:\n{report}", u.unit);
    }
}
