"""Recordings survive what goes wrong on a rig: the daemon killed mid-recording, a full disk.

End to end: the real ephysd process on the simulated device, driven by the real radiens-core
`AllegoClient` (PyPI), its files read back with h5py and the CL API's `cl.RecordingView`
(PyPI `cl-sdk`). Timings assume the device runs in real time (30 000 frames per second).

Run: .venv/bin/python -m pytest tests/interop/test_recording_safety.py -p no:cacheprovider -v
"""

from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import time
from pathlib import Path

import cl
import h5py
import numpy as np
import pytest
from conftest import ephysd_binary
from radiens_core import AllegoClient
from radiens_core.exceptions import RadiensError
from radiens_core.models.status import RecordMode, StreamMode

RATE = 30_000.0
CHANNELS = 32
FLUSH_INTERVAL_S = 1.0  # recording.flush_interval_s, the default
MARGIN_S = 0.5


def text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def parse_utc(value) -> dt.datetime:
    value = text(value)
    assert value.endswith("Z"), value
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def strictly_increasing(values: np.ndarray) -> bool:
    return bool(np.all(np.diff(values.astype(np.int64)) > 0))


def start_recording(client: AllegoClient) -> tuple[Path, float]:
    """Starts streaming and recording; returns the file and the monotonic time it started."""
    client.start_streaming()
    client.start_recording()
    started = time.monotonic()
    status = client.get_status()
    assert status.recording.record_mode == RecordMode.ON
    path = Path(status.recording.active_filename)
    assert path.is_file(), path
    return path, started


def record_then_kill(daemon, seconds: float) -> tuple[Path, float]:
    """Records for `seconds`, then SIGKILLs the daemon. Returns the file and the seconds
    recorded when the signal was sent."""
    client = AllegoClient()
    try:
        path, started = start_recording(client)
        time.sleep(seconds)
        assert client.get_status().recording.record_mode == RecordMode.ON
        recorded = time.monotonic() - started
        assert daemon.kill() == -9
    finally:
        client.close()
    return path, recorded


def check_crashed_file(path: Path, recorded_s: float) -> int:
    """What a reader finds in a file whose writer was killed: returns its whole rows."""
    # Still marked open for writing: a plain reader refuses it...
    with pytest.raises(OSError, match="already open for write"):
        h5py.File(path, "r")
    # ... and a SWMR reader sees everything up to the last flush.
    with h5py.File(path, "r", swmr=True) as f:
        frame_index = f["frame_index"][...]
        rows = len(frame_index)
        minimum = (recorded_s - FLUSH_INTERVAL_S - MARGIN_S) * RATE
        assert rows >= minimum, f"{rows} frames after {recorded_s:.2f} s recorded; expected at least {minimum:.0f}"
        assert strictly_increasing(frame_index)
        assert f["samples"].shape[0] >= rows and f["samples"].shape[1] == CHANNELS
        assert f.attrs["closed_cleanly"] == 0
        assert text(f.attrs["recovered_utc"]) == ""
        assert text(f.attrs["ended_utc"]) == ""
        assert f.attrs["frames_per_second"] == RATE
    return rows


def check_recovered_file(path: Path) -> tuple[int, str]:
    """A recovered file opens in any reader and says it was recovered; returns (rows,
    recovered_utc)."""
    with h5py.File(path, "r") as f:
        frame_index = f["frame_index"][...]
        rows = len(frame_index)
        assert rows > 0
        assert f["samples"].shape == (rows, CHANNELS)
        assert strictly_increasing(frame_index)
        assert f.attrs["closed_cleanly"] == 0
        recovered = text(f.attrs["recovered_utc"])
        assert abs(dt.datetime.now(dt.timezone.utc) - parse_utc(recovered)) < dt.timedelta(minutes=5)
        start, end = int(f.attrs["start_timestamp"]), int(f.attrs["end_timestamp"])
        assert (start, end) == (int(frame_index[0]), int(frame_index[-1]) + 1)
        assert f.attrs["duration_frames"] == end - start
        # No frames were dropped by the device: the span is the rows.
        assert f.attrs["duration_frames"] == rows
        assert f.attrs["duration_seconds"] == pytest.approx(rows / RATE)
        assert f.attrs["gap_count"] == len(f["gaps"]) == 0
    with cl.RecordingView(str(path)) as view:
        assert view.attributes["duration_frames"] == rows
        assert view.attributes["recovered_utc"] == recovered
        assert view.samples.shape == (rows, CHANNELS)
        assert view.samples[:3000].std() > 5, "recovered samples look flat"
    return rows, recovered


def test_sigkill_leaves_a_file_that_recover_and_restart_close(start_daemon):
    # First crash, closed by `ephysd recover`.
    first, recorded = record_then_kill(start_daemon(), 3.0)
    swmr_rows = check_crashed_file(first, recorded)
    result = subprocess.run(
        [str(ephysd_binary()), "recover", str(first)], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert f"{first}: recovered: " in result.stdout, result.stdout
    kept = int(re.search(r"recovered: (\d+) frames", result.stdout).group(1))
    rows, first_recovered = check_recovered_file(first)
    assert rows == kept == swmr_rows

    # Second crash, in the same directory; the next daemon closes it as it starts.
    second, recorded = record_then_kill(start_daemon(), 1.5)
    assert second != first and second.parent == first.parent
    check_crashed_file(second, recorded)
    restarted = start_daemon()  # listening: start-up recovery has run
    rows, _ = check_recovered_file(second)
    assert rows >= (recorded - FLUSH_INTERVAL_S - MARGIN_S) * RATE
    log = restarted.output()
    assert "recovered a recording a crash left open" in log and str(second) in log, log
    # The file recovered before is left as it was.
    with h5py.File(first, "r") as f:
        assert text(f.attrs["recovered_utc"]) == first_recovered
    code, _ = restarted.terminate()
    assert code == 0, restarted.output()


@pytest.fixture
def small_disk(tmp_path: Path):
    """A 40 MiB tmpfs: a disk that fills within a second at 1024 channels."""
    mountpoint = tmp_path / "small-disk"
    mountpoint.mkdir()
    try:
        result = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", "size=40m", "tmpfs", str(mountpoint)],
            capture_output=True, text=True, timeout=30, check=False,
        )
        refused = ""
        if result.returncode != 0:
            refused = " ".join(result.stderr.split()) or f"exit code {result.returncode}"
    except FileNotFoundError as e:
        refused = str(e)
    if refused:
        reason = f"cannot mount a tmpfs to fill (euid {os.geteuid()}): {refused}"
        print(reason)
        pytest.skip(reason)
    try:
        yield mountpoint
    finally:
        subprocess.run(["umount", str(mountpoint)], check=True, timeout=30)


def test_full_disk_stops_the_recording_cleanly_and_streaming_goes_on(small_disk, start_daemon):
    daemon = start_daemon(
        EPHYSD_RECORDING__BASE_PATH=str(small_disk),
        EPHYSD_DEVICE__CHANNELS="1024",
        EPHYSD_RECORDING__MIN_FREE_MB="0",
        EPHYSD_CACHE__SECONDS="2",
    )
    client = AllegoClient()
    try:
        path, started = start_recording(client)
        deadline = started + 20
        while (status := client.get_status()).recording.record_mode == RecordMode.ON:
            assert time.monotonic() < deadline, "the recording did not stop on a 40 MiB disk within 20 s"
            time.sleep(0.1)
        error = status.recording.error
        assert "\n" not in error, error
        assert "disk full" in error, error
        assert path.name in error, error
        match = re.search(r"kept (\d+) frames", error)
        assert match, error
        kept = int(match.group(1))
        assert kept > 0.1 * RATE, error  # 40 MiB hold about 0.6 s at 1024 channels

        # Acquisition goes on: still streaming, the live cache still advancing.
        assert status.streaming.stream_mode == StreamMode.ON
        before = status.streaming.primary_cache_t_range[1]
        time.sleep(0.5)
        later = client.get_status()
        assert later.streaming.stream_mode == StreamMode.ON
        assert later.streaming.primary_cache_t_range[1] >= before + 0.3
        assert later.recording.record_mode == RecordMode.OFF
        assert later.recording.error == error
        client.healthcheck()
    finally:
        client.close()
    code, _ = daemon.terminate()
    assert code == 0, daemon.output()
    assert "disk full" in daemon.output()

    # The file was closed cleanly with everything it kept.
    assert [p.name for p in small_disk.iterdir()] == [path.name]
    with h5py.File(path, "r") as f:
        assert f.attrs["closed_cleanly"] == 1
        assert text(f.attrs["ended_utc"]) != ""
        assert f["samples"].shape == (kept, 1024)
        frame_index = f["frame_index"][...]
        assert len(frame_index) == kept
        assert strictly_increasing(frame_index)
        assert f.attrs["duration_frames"] == kept
        assert f["samples"][-100:].std() > 5, "the last frames kept look flat"


def test_recording_refused_below_min_free_space(start_daemon, tmp_path):
    start_daemon(EPHYSD_RECORDING__MIN_FREE_MB="104857600")  # 100 TiB
    client = AllegoClient()
    try:
        client.start_streaming()
        # radiens-core raises on the gRPC error, with the daemon's message as the details.
        with pytest.raises(RadiensError) as refused:
            client.start_recording()
        message = str(refused.value)
        assert "recording.min_free_mb = 104857600 MiB" in message, message
        assert str(tmp_path / "recordings") in message, message
        status = client.get_status()
        assert status.recording.record_mode == RecordMode.OFF
        assert status.streaming.stream_mode == StreamMode.ON
    finally:
        client.close()
    assert list((tmp_path / "recordings").glob("*.h5")) == []


def test_cl_recording_view_reads_a_recording_made_through_allego_client(daemon):
    client = AllegoClient()
    try:
        path, _ = start_recording(client)
        time.sleep(1.5)
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()

    with cl.RecordingView(str(path)) as view:
        attrs = view.attributes
        assert attrs["channel_count"] == CHANNELS
        assert attrs["frames_per_second"] == attrs["sampling_frequency"] == RATE
        assert attrs["uV_per_sample_unit"] == pytest.approx(0.195)
        assert attrs["closed_cleanly"] == 1
        assert attrs["recording_type"] == "continuous_and_spikes"
        assert "sim-spikes" in attrs["device"]
        assert attrs["software_version"].startswith("ephysd ")
        assert json.loads(attrs["config"])["device"]["channels"] == CHANNELS
        assert json.loads(attrs["file_format"])["stim_and_spike_timestamps_relative_to_start"] is True
        assert parse_utc(attrs["created_utc"]) <= parse_utc(attrs["ended_utc"])
        frames = attrs["duration_frames"]
        assert frames >= 1.3 * RATE, frames
        assert attrs["end_timestamp"] - attrs["start_timestamp"] == frames
        assert attrs["duration_seconds"] == pytest.approx(frames / RATE)

        assert view.samples.shape == (frames, CHANNELS)
        uv = view.samples[...] * attrs["uV_per_sample_unit"]
        assert 5 < uv.std() < 500, uv.std()
        assert view.spikes is not None and view.stims is not None
        assert len(list(view.data_streams.keys())) == 0

        # The simulated device's ground truth: spikes inside the recording, on its channels,
        # each at a trough of the recorded signal as deep as the device says.
        assert "ground_truth" in view.file.root
        truth = view.file.root.ground_truth.read()
        assert len(truth) >= 10, f"only {len(truth)} ground-truth spikes in {frames / RATE:.1f} s"
        assert truth["timestamp"].min() >= 0 and truth["timestamp"].max() < frames
        assert truth["channel"].max() < CHANNELS
        assert np.all(np.diff(truth["timestamp"]) >= 0)
        assert np.all(truth["peak_uv"] < 0)
        recorded = uv[truth["timestamp"], truth["channel"]]
        assert np.median(np.abs(recorded - truth["peak_uv"])) < 30, (recorded[:10], truth["peak_uv"][:10])
