"""Spike detection, ephysd against SpikeInterface, on the same recording in one run: speed and
quality.

1. The real daemon (`target/release/ephysd run`, accelerated simulated device `sim-spikes`,
   seed 11, detection on with the default `[processing]` keys) records `--seconds` of
   `--channels` channels as `continuous_and_spikes`: `/samples`, `/spikes` (what the daemon
   detected live) and `/ground_truth` (every spike the simulator embedded) in one file.
2. Speed, on one core each, timed side by side:
   a. ephysd: `target/release/examples/detect_file <file>` reads `/samples` into memory, then
      runs a stage chain over it block by block (128 frames) and times only that, for two
      chains: `highpass-detect` (the spike-band highpass and the detector: the work
      SpikeInterface does below) and `production` (the daemon's whole default chain: the
      filtered tap too, and the write-back into the recorded samples when stage-1 filters
      are set, which by default they are not);
   b. SpikeInterface: the same samples in memory (float32 µV, a `NumpyRecording`),
      `highpass_filter` at 300 Hz (Butterworth order 2, forward only, like ours), lazily, then
      `detect_peaks` (peak_sign "neg", detect_threshold 5 MADs, n_jobs 1) with each of its
      methods available here ("by_channel" in numpy, "locally_exclusive" in numba; the torch
      ones when torch is installed), each after a warm-up call on 0.5 s (numba compiles);
      only the `detect_peaks` call on the whole recording is timed (it includes
      SpikeInterface's noise estimate and the filtering it does as it reads).
   Each prints × real time; the ratios are the fastest SpikeInterface method's time over each
   of ours.
3. Quality: the daemon's `/spikes`, `detect_file`'s (production chain) and each method's
   peaks, each scored against `/ground_truth` with the rules of `ephysd::processing::score`
   (ported below):
   ±0.5 ms, a neighbourhood of 4 channels, SNR = a unit's deepest trough over the simulator's
   design noise rms (`SimulatedSource::noise_rms_uv`, from `detect_file`). The first second is
   left out, as in daemon/tests/detection_quality.rs (the detector's noise estimate needs it),
   and so are the last 5 ms (a spike there has no complete snippet yet). Everything works on
   the first `--seconds` of the file (the recording stops a little after that length).

Usage (from the repository root, after `cargo build --release -p ephysd --bins --examples`):

    python daemon/benches/detection_side_by_side.py [--channels 1024] [--seconds 60]
        [--recording FILE] [--keep DIR] [--base-port 51151] [--units]

needs numpy, h5py, spikeinterface (and numba for its "locally_exclusive" method). `--recording`
skips step 1 and uses an existing recording of the simulated device. Memory: the samples are
held as float32 µV (7.4 GB for 60 s of 1024 channels) plus `detect_file`'s int16 copy (3.7 GB),
and the recording takes 3.7 GB of disk.
"""

from __future__ import annotations

import argparse
import json
import os

# One core for SpikeInterface: no thread pools under numpy, numba or scipy.
for _v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS"):
    os.environ.setdefault(_v, "1")

import shutil  # noqa: E402
import signal  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_process import EPHYSD, ROOT, cli, wait_for_port  # noqa: E402

import h5py  # noqa: E402
import numpy as np  # noqa: E402

DETECT_FILE = ROOT / "target" / "release" / "examples" / "detect_file"
RATE = 30_000.0
TOLERANCE_S = 0.0005
NEIGHBOURHOOD = 4
SETTLE_S = 1.0
STRONG_SNR = 5.0


# --- the recording ------------------------------------------------------------------------


def record(directory: Path, channels: int, seconds: float, base_port: int) -> Path:
    recordings = directory / "recordings"
    env = {
        "PATH": os.environ.get("PATH", ""),
        "EPHYSD_SERVER__BASE_PORT": str(base_port),
        "EPHYSD_RECORDING__BASE_PATH": str(recordings),
        "EPHYSD_RECORDING__MIN_FREE_MB": "0",
        "EPHYSD_RECORDING__RECORDING_TYPE": "continuous_and_spikes",
        "EPHYSD_DEVICE__CHANNELS": str(channels),
        "EPHYSD_DEVICE__ACCELERATED": "true",
        "EPHYSD_DEVICE__SEED": "11",
        "EPHYSD_CACHE__SECONDS": "5",
        "EPHYSD_REALTIME__FIFO_PRIORITY": "none",
    }
    log = open(directory / "ephysd.log", "w")
    proc = subprocess.Popen([str(EPHYSD), "run"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(base_port + 4, proc, 30)
        cli(base_port, "stream", "start")
        cli(base_port, "record", "start")
        started = time.monotonic()
        while True:
            status = cli(base_port, "status")
            if (status["recording"]["duration_s"] or 0.0) >= seconds:
                break
            if time.monotonic() - started > 600:
                raise SystemExit("the recording did not reach its length in 10 minutes")
            time.sleep(0.2)
        cli(base_port, "record", "stop")
        print(f"recorded {seconds:.0f} s of {channels} ch in {time.monotonic() - started:.1f} s (accelerated)")
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        log.close()
    files = sorted(recordings.glob("*.h5"))
    if len(files) != 1:
        raise SystemExit(f"expected one recording in {recordings}, found {files}")
    return files[0]


# --- scoring: the rules of ephysd::processing::score --------------------------------------


def near(sorted_frames: np.ndarray, frames: np.ndarray, tolerance: int) -> np.ndarray:
    """For each of `frames`, whether `sorted_frames` holds a frame within `tolerance`."""
    if sorted_frames.size == 0:
        return np.zeros(frames.shape, dtype=bool)
    i = np.searchsorted(sorted_frames, frames - tolerance, side="left")
    inside = i < sorted_frames.size
    hit = np.zeros(frames.shape, dtype=bool)
    hit[inside] = sorted_frames[i[inside]] <= frames[inside] + tolerance
    return hit


def score(truth: dict, det_frames: np.ndarray, det_channels: np.ndarray, tolerance: int, noise_rms: float) -> list:
    """Per unit: (unit, channel, snr, spikes, found, true detections, false detections).

    - A unit's spike is found when a detection on the unit's peak channel lies within
      `tolerance` frames of it.
    - A detection on channel c is explained when any true spike of a unit whose peak channel is
      within NEIGHBOURHOOD channels of c lies within `tolerance` frames.
    - A unit's precision counts the detections on its peak channel: matching one of its own
      spikes, true; explained by no spike, false; explained by another unit, neither.
    """
    by_channel = {}
    order = np.argsort(det_channels, kind="stable")
    chans, starts = np.unique(det_channels[order], return_index=True)
    for k, c in enumerate(chans):
        end = starts[k + 1] if k + 1 < len(starts) else len(order)
        by_channel[int(c)] = np.sort(det_frames[order[starts[k] : end]])
    t_frame, t_chan, t_unit, t_amp = truth["frame"], truth["channel"], truth["unit"], truth["amplitude"]
    truth_by_channel = {int(c): np.sort(t_frame[t_chan == c]) for c in np.unique(t_chan)}
    empty = np.zeros(0, dtype=np.int64)
    units = []
    for u in np.unique(t_unit):
        mine = t_unit == u
        # The unit's channel is that of its first spike, as in the Rust scorer.
        channel = int(t_chan[np.argmax(mine)])
        frames, channels_of = t_frame[mine], t_chan[mine]
        found = 0
        for c in np.unique(channels_of):
            found += int(near(by_channel.get(int(c), empty), frames[channels_of == c], tolerance).sum())
        snr = float(t_amp[mine].max() / noise_rms)
        detections = by_channel.get(channel, empty)
        own = np.unique(frames)
        is_own = near(own, detections, tolerance)
        lo, hi = max(channel - NEIGHBOURHOOD, 0), channel + NEIGHBOURHOOD
        around = [truth_by_channel[c] for c in range(lo, hi + 1) if c in truth_by_channel]
        nearby = np.sort(np.concatenate(around)) if around else empty
        explained = near(nearby, detections, tolerance)
        true_d = int(is_own.sum())
        false_d = int((~is_own & ~explained).sum())
        units.append((int(u), channel, snr, int(mine.sum()), found, true_d, false_d))
    return units


def recall(u) -> float:
    return 1.0 if u[3] == 0 else u[4] / u[3]


def precision(u) -> float:
    return 1.0 if u[5] + u[6] == 0 else u[5] / (u[5] + u[6])


def summary(name: str, units: list, detections: int) -> None:
    for label, chosen in (
        (f"units >= {STRONG_SNR:g}x noise", [u for u in units if u[2] >= STRONG_SNR]),
        ("all units", units),
    ):
        if not chosen:
            print(f"  {name:<34} {label}: none")
            continue
        r = np.array([recall(u) for u in chosen])
        p = np.array([precision(u) for u in chosen])
        print(
            f"  {name:<34} {label:<18} n={len(chosen):4d}  recall min {r.min():.3f} median {np.median(r):.3f}"
            f"  precision min {p.min():.3f} median {np.median(p):.3f}"
            f"  (>= 0.95 both: {int(((r >= 0.95) & (p >= 0.95)).sum())})"
        )
    print(f"  {name:<34} detections scored: {detections}")


# --- SpikeInterface -----------------------------------------------------------------------


def si_methods():
    from spikeinterface.sortingcomponents.peak_detection.method_list import detect_peak_methods

    names = ["by_channel", "locally_exclusive", "by_channel_torch", "locally_exclusive_torch"]
    usable = []
    for name in names:
        if name not in detect_peak_methods:
            continue
        engine = getattr(detect_peak_methods[name], "engine", "numpy")
        module = {"numba": "numba", "torch": "torch"}.get(engine)
        if module is not None:
            try:
                __import__(module)
            except ImportError:
                print(f"SpikeInterface method {name}: not available here ({module} is not installed)")
                continue
        usable.append(name)
    return usable


def si_detect(recording, method: str):
    from spikeinterface.sortingcomponents.peak_detection import detect_peaks

    return detect_peaks(
        recording,
        method=method,
        method_kwargs=dict(peak_sign="neg", detect_threshold=5, exclude_sweep_ms=1.0),
        job_kwargs=dict(n_jobs=1, chunk_duration="1s", progress_bar=False),
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--recording", type=Path)
    ap.add_argument("--keep", type=Path, help="directory to record into and keep (default: a temporary one)")
    ap.add_argument("--base-port", type=int, default=51151)
    ap.add_argument("--units", action="store_true", help="print every unit's score")
    args = ap.parse_args()
    for binary in (EPHYSD, DETECT_FILE):
        if not binary.exists():
            raise SystemExit(f"{binary} is missing: cargo build --release -p ephysd --bins --examples")

    scratch = Path(tempfile.mkdtemp(prefix="ephysd-detect-", dir=args.keep))
    try:
        path = args.recording or record(scratch, args.channels, args.seconds, args.base_port)
        run(path, scratch, args.seconds, args.units)
    finally:
        if args.keep is None:
            shutil.rmtree(scratch, ignore_errors=True)


def run(path: Path, scratch: Path, seconds: float, per_unit: bool) -> None:
    # (a) ours, first, before Python holds the samples.
    prefix = scratch / "detect_file"
    chains = ["highpass-detect", "production"]
    out = subprocess.run(
        [str(DETECT_FILE), str(path), "--out", str(prefix), "--seconds", str(seconds)]
        + [a for c in chains for a in ("--chain", c)],
        check=True,
        capture_output=True,
    )
    ours = {r["chain"]: r for r in map(json.loads, out.stdout.decode().splitlines())}
    for c in chains:
        r = ours[c]
        print(
            f"ephysd {c} ({' > '.join(r['stages'])}), {r['channels']} ch x {r['signal_s']:.1f} s, one thread: "
            f"{r['chain_s']:.2f} s, {r['x_real_time']:.1f}x real time, {r['ns_per_sample']:.2f} ns/sample; "
            f"block p50 {r['block_us']['p50']:.0f} us, p99 {r['block_us']['p99']:.0f} us, "
            f"p99.9 {r['block_us']['p999']:.0f} us; {r['spikes']} spikes"
        )
    prod = ours["production"]
    seconds, channels, frames = prod["signal_s"], prod["channels"], prod["frames"]
    print(f"(detect_file read /samples into memory first: {prod['read_s']:.1f} s, not timed)")

    # (b) SpikeInterface on the same samples, in memory.
    import spikeinterface
    from spikeinterface.core import NumpyRecording
    from spikeinterface.preprocessing import highpass_filter

    with h5py.File(path, "r") as f:
        uv_per_unit = float(f.attrs.get("uV_per_sample_unit", 0.195))
        rate = float(f.attrs.get("frames_per_second", RATE))
        raw = f["samples"][:frames]
        locations = None
        if "channels" in f:
            rows = f["channels"][:]
            if {"x_um", "y_um"} <= set(rows.dtype.names or ()):
                locations = np.c_[rows["x_um"], rows["y_um"]].astype(float)
        gt = f["ground_truth"][:]
        daemon_spikes = f["spikes"][:]
    traces = np.empty(raw.shape, dtype=np.float32)
    np.multiply(raw, np.float32(uv_per_unit), out=traces, casting="unsafe")
    del raw
    if locations is None or not np.all(np.isfinite(locations)):
        locations = np.c_[np.zeros(traces.shape[1]), 25.0 * np.arange(traces.shape[1])]
    recording = NumpyRecording(traces_list=[traces], sampling_frequency=rate)
    recording.set_dummy_probe_from_locations(locations)
    filtered = highpass_filter(
        recording, freq_min=300.0, filter_order=2, ftype="butter", direction="forward", dtype="float32"
    )
    timings, peaks = {}, {}
    for method in si_methods():
        si_detect(filtered.frame_slice(0, int(0.5 * rate)), method)  # warm-up (numba compiles)
        start = time.perf_counter()
        peaks[method] = si_detect(filtered, method)
        timings[method] = si_s = time.perf_counter() - start
        print(
            f"SpikeInterface {spikeinterface.__version__} highpass_filter(300 Hz, order 2, forward) + "
            f"detect_peaks({method}, n_jobs=1), {channels} ch x {seconds:.1f} s: {si_s:.2f} s, "
            f"{seconds / si_s:.2f}x real time, {si_s * 1e9 / (seconds * rate * channels):.2f} ns/sample; "
            f"{len(peaks[method])} peaks"
        )
    best = min(timings, key=timings.get)
    for c in chains:
        print(
            f"speed ratio, SpikeInterface ({best}, its fastest here) time / ephysd {c} time: "
            f"{timings[best] / ours[c]['chain_s']:.1f}x"
        )

    # Quality.
    settle = int(SETTLE_S * rate)
    end = frames - int(0.005 * rate)
    tolerance = int(round(TOLERANCE_S * rate))
    keep = (gt["timestamp"] >= settle) & (gt["timestamp"] < end)
    truth = {
        "frame": gt["timestamp"][keep].astype(np.int64),
        "channel": gt["channel"][keep].astype(np.int64),
        "unit": gt["unit"][keep].astype(np.int64),
        "amplitude": np.abs(gt["peak_uv"][keep]).astype(np.float64),
    }
    noise = float(prod["sim_noise_rms_uv"])
    ours_rows = np.fromfile(f"{prefix}.production.bin", dtype="<i8").reshape(-1, 2)
    plain_rows = np.fromfile(f"{prefix}.highpass-detect.bin", dtype="<i8").reshape(-1, 2)
    same = ours_rows.shape == plain_rows.shape and bool(np.all(ours_rows == plain_rows))
    print(f"detect_file: highpass-detect and production found {'the same' if same else 'different'} spikes")
    sets = {
        "ephysd live (/spikes)": (
            daemon_spikes["timestamp"].astype(np.int64),
            daemon_spikes["channel"].astype(np.int64),
        ),
        "ephysd offline (detect_file)": (ours_rows[:, 0], ours_rows[:, 1]),
    }
    for method, p in peaks.items():
        sets[f"SpikeInterface {method}"] = (p["sample_index"].astype(np.int64), p["channel_index"].astype(np.int64))
    print(
        f"quality against /ground_truth: {channels} ch, {(end - settle) / rate:.1f} s after the first second, "
        f"+-{TOLERANCE_S * 1e3:g} ms, neighbourhood {NEIGHBOURHOOD} ch, noise rms {noise:g} uV, "
        f"{len(np.unique(truth['unit']))} units, {len(truth['frame'])} true spikes"
    )
    for name, (det_frames, det_chans) in sets.items():
        settled = (det_frames >= settle) & (det_frames < end)
        units = score(truth, det_frames[settled], det_chans[settled], tolerance, noise)
        summary(name, units, int(settled.sum()))
        if per_unit:
            for u in units:
                print(
                    f"    unit {u[0]:4d} ch {u[1]:4d} snr {u[2]:5.1f} spikes {u[3]:5d} "
                    f"recall {recall(u):.3f} precision {precision(u):.3f} (false {u[6]})"
                )
    sys.stdout.flush()


if __name__ == "__main__":
    main()
