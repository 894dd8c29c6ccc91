"""Interoperability of ephysd recordings with the Python HDF5 stack.

A recording is written by the Rust example `write_sample_recording` (crate
ephysd-hdf5) and opened here with h5py and with PyTables, the two libraries
analysis code uses. The example writes a deterministic ramp:

    sample[f, c] = (f + 1000 * c) mod 65536, reinterpreted as int16
    frame_index[f] = 1000 + f, plus 5 from row `gap_at` on (one gap)

Run: /tmp/pyenv312/bin/python -m pytest tests/interop/test_recording_h5py.py
(needs cargo on PATH, h5py, tables, numpy).
"""

from __future__ import annotations

import datetime as dt
import subprocess
import warnings
from pathlib import Path

import h5py
import numpy as np
import pytest
import tables

REPO_ROOT = Path(__file__).resolve().parents[2]

CHANNELS = 8
FRAMES = 2500
GAP_AT = 1234
FIRST_FRAME_INDEX = 1000
GAP_FRAMES = 5
FPS = 30_000.0
UV_PER_UNIT = 0.195

ATTRIBUTE_NAMES = {
    "frames_per_second",
    "channel_count",
    "uV_per_sample_unit",
    "start_timestamp",
    "end_timestamp",
    "duration_frames",
    "duration_seconds",
    "created_utc",
    "ended_utc",
    "software_version",
    "device",
    "gap_count",
    "closed_cleanly",
}


def write_recording(path: Path, channels: int, frames: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        "cargo", "run", "-q", "-p", "ephysd-hdf5", "--example", "write_sample_recording",
        "--", str(path), str(channels), str(frames), *extra,
    ]
    return subprocess.run(
        cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False
    )


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interop") / "ramp.h5"
    result = write_recording(path, CHANNELS, FRAMES, str(GAP_AT))
    assert result.returncode == 0, f"example failed:\n{result.stdout}\n{result.stderr}"
    assert path.is_file()
    return path


def expected_samples(frames: int, channels: int) -> np.ndarray:
    f = np.arange(frames, dtype=np.int64)[:, None]
    c = np.arange(channels, dtype=np.int64)[None, :]
    return ((f + 1000 * c) % 65536).astype(np.uint16).view(np.int16)


def expected_frame_index(frames: int) -> np.ndarray:
    rows = np.arange(frames, dtype=np.uint64)
    return FIRST_FRAME_INDEX + rows + np.where(rows >= GAP_AT, GAP_FRAMES, 0).astype(np.uint64)


def as_text(value) -> str:
    """h5py gives str for variable-length strings; PyTables numpy.str_; accept bytes too."""
    if isinstance(value, (bytes, np.bytes_)):
        return value.decode("utf-8")
    return str(value)


def parse_utc(text: str) -> dt.datetime:
    assert text.endswith("Z"), text
    parsed = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
    assert parsed.utcoffset() == dt.timedelta(0)
    return parsed


def check_attributes(attrs: dict) -> None:
    assert ATTRIBUTE_NAMES <= set(attrs), sorted(ATTRIBUTE_NAMES - set(attrs))
    end = FIRST_FRAME_INDEX + FRAMES + GAP_FRAMES
    assert attrs["frames_per_second"] == FPS
    assert attrs["channel_count"] == CHANNELS
    assert np.isclose(attrs["uV_per_sample_unit"], UV_PER_UNIT)
    assert attrs["start_timestamp"] == FIRST_FRAME_INDEX
    assert attrs["end_timestamp"] == end
    assert attrs["duration_frames"] == end - FIRST_FRAME_INDEX
    assert np.isclose(attrs["duration_seconds"], (end - FIRST_FRAME_INDEX) / FPS)
    assert attrs["gap_count"] == 1
    assert attrs["closed_cleanly"] == 1
    for name in ("start_timestamp", "end_timestamp", "duration_frames", "gap_count"):
        assert np.asarray(attrs[name]).dtype == np.uint64, name
    for name in ("frames_per_second", "uV_per_sample_unit", "duration_seconds"):
        assert np.asarray(attrs[name]).dtype == np.float64, name
    assert as_text(attrs["software_version"]).startswith("ephysd ")
    assert as_text(attrs["device"]) == "ramp"
    created = parse_utc(as_text(attrs["created_utc"]))
    ended = parse_utc(as_text(attrs["ended_utc"]))
    assert created <= ended
    assert abs(dt.datetime.now(dt.timezone.utc) - ended) < dt.timedelta(hours=1)


def test_h5py_reads_layout_attributes_and_pattern(recording: Path) -> None:
    with h5py.File(recording, "r") as f:
        samples = f["samples"]
        assert samples.shape == (FRAMES, CHANNELS)
        assert samples.dtype == np.dtype("<i2")
        assert samples.maxshape == (None, CHANNELS)
        assert samples.chunks is not None
        assert samples.chunks[1] == CHANNELS
        assert samples.chunks[0] * CHANNELS * 2 <= 1 << 20

        frame_index = f["frame_index"]
        assert frame_index.shape == (FRAMES,)
        assert frame_index.dtype == np.dtype("<u8")
        assert frame_index.maxshape == (None,)

        attrs = dict(f.attrs)
        # h5py hands variable-length strings back as str.
        for name in ("created_utc", "ended_utc", "software_version", "device"):
            assert isinstance(attrs[name], str), (name, type(attrs[name]))
        check_attributes(attrs)

        np.testing.assert_array_equal(samples[...], expected_samples(FRAMES, CHANNELS))
        np.testing.assert_array_equal(frame_index[...], expected_frame_index(FRAMES))
        jumps = np.flatnonzero(np.diff(frame_index[...].astype(np.int64)) != 1)
        assert jumps.tolist() == [GAP_AT - 1]
        microvolts = samples[10, 3] * attrs["uV_per_sample_unit"]
        assert np.isclose(microvolts, (10 + 3000) * UV_PER_UNIT)


def test_pytables_reads_layout_attributes_and_pattern(recording: Path) -> None:
    with warnings.catch_warnings():
        # Opening a file PyTables did not write must not need any workaround.
        warnings.simplefilter("error", tables.exceptions.PerformanceWarning)
        warnings.simplefilter("error", tables.exceptions.DataTypeWarning)
        warnings.simplefilter("error", tables.exceptions.NaturalNameWarning)
        with tables.open_file(str(recording), mode="r") as h5:
            samples = h5.get_node("/samples")
            assert tuple(samples.shape) == (FRAMES, CHANNELS)
            assert samples.dtype == np.dtype("int16")
            frame_index = h5.get_node("/frame_index")
            assert tuple(frame_index.shape) == (FRAMES,)
            assert frame_index.dtype == np.dtype("uint64")

            root_attrs = h5.root._v_attrs
            attrs = {name: root_attrs[name] for name in root_attrs._f_list("all")}
            check_attributes(attrs)

            np.testing.assert_array_equal(samples.read(), expected_samples(FRAMES, CHANNELS))
            np.testing.assert_array_equal(frame_index.read(), expected_frame_index(FRAMES))
            # Partial reads across a chunk boundary go through PyTables' own slicing.
            np.testing.assert_array_equal(
                samples.read(start=GAP_AT - 2, stop=GAP_AT + 2),
                expected_samples(FRAMES, CHANNELS)[GAP_AT - 2 : GAP_AT + 2],
            )


def test_max_channel_count_uses_one_mib_chunks(tmp_path: Path) -> None:
    path = tmp_path / "wide.h5"
    result = write_recording(path, 1024, 700)
    assert result.returncode == 0, result.stderr
    with h5py.File(path, "r") as f:
        assert f["samples"].shape == (700, 1024)
        assert f["samples"].chunks == (512, 1024)
        assert f.attrs["gap_count"] == 0
        np.testing.assert_array_equal(f["samples"][...], expected_samples(700, 1024))
    with tables.open_file(str(path), mode="r") as h5:
        np.testing.assert_array_equal(h5.root.samples[690:700], expected_samples(700, 1024)[690:700])


def test_existing_recording_is_not_overwritten(recording: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy.h5"
    copy.write_bytes(recording.read_bytes())
    before = copy.read_bytes()
    result = write_recording(copy, 2, 10)
    assert result.returncode != 0
    assert str(copy) in result.stderr
    assert "overwrite" in result.stderr
    assert copy.read_bytes() == before


if __name__ == "__main__":
    raise SystemExit(pytest.main([__file__, "-v"]))
