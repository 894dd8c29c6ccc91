"""Interoperability of ephysd recordings with the Python HDF5 stack.

A recording is written by the Rust example `write_sample_recording` (crate ephysd-hdf5,
hdf5-writer/examples/write_sample_recording.rs) and opened here with h5py, with PyTables and
with the CL API's `cl.RecordingView` (PyPI `cl-sdk`), the libraries analysis code uses. The
example fills every part of the layout with known values (its doc comment is the reference),
so each reader is checked against the values, not just the shapes:

    samples[f, c]   = (f + 1000 * c) mod 65536, reinterpreted as int16
    frame_index[f]  = 1000 + f, plus 5 from row GAP_AT on (one gap)
    analog_in[f, a] = (3 * f + 10000 * a) mod 65536        (2 inputs)
    digital_in[f]   = f // 16,  digital_out[f] = 1 << (f % 16)
    spikes, stims, ground truth, channels, two msgpack data streams: the tables below

Run: .venv/bin/python -m pytest tests/interop/test_recording_h5py.py -p no:cacheprovider
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import warnings
from pathlib import Path

import cl
import h5py
import msgpack
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
ANALOG_INPUTS = 2
SNIPPET = 75

# (row, channel, unit); the k-th spike's snippet is 100 * k + (j - 25) / 2.
SPIKES = [(100, 0, 1), (500, 3, 2), (1200, 7, -1), (1500, 1, 1), (2400, 5, 3)]
# (row, channel, design id)
STIMS = [(200, 2, 1), (1300, 6, 2), (2200, 2, 1)]
# (row, channel, unit, peak µV)
GROUND_TRUTH = [(101, 0, 1, -80.5), (502, 3, 2, -120.25), (1501, 1, 1, -79.75)]
# name -> (application attribute, [(row, decoded entry)])
DATA_STREAMS = {
    "events": (
        {"source": "write_sample_recording"},
        [(0, {"x": 1}), (1000, ["of", "arbitrary", "size"]), (2000, "and type.")],
    ),
    "values": (
        {},
        [(0, None), (300, True), (600, -5), (900, 300), (1200, 0.25), (1800, {"a": [1, 2], "b": "µV"})],
    ),
}
DEVICE_SERIAL = "RAMP-0001"
CHIPS = [{"port": "A", "headstage": "ramp"}, {"port": "B", "headstage": "ramp"}]
CONFIG = {"device": {"backbone": "ramp"}, "note": "µV ramp"}

# Every root attribute and its stored type: the CL API's, then ephysd's.
ATTRIBUTE_TYPES = {
    "frames_per_second": np.float64,
    "sampling_frequency": np.float64,
    "channel_count": np.uint32,
    "uV_per_sample_unit": np.float64,
    "start_timestamp": np.uint64,
    "end_timestamp": np.uint64,
    "duration_frames": np.uint64,
    "duration_seconds": np.float64,
    "created_utc": str,
    "ended_utc": str,
    "file_format": str,
    "software_version": str,
    "device": str,
    "device_serial": str,
    "chips": str,
    "config": str,
    "recording_type": str,
    "port": str,
    "file_sequence": np.uint32,
    "gap_count": np.uint64,
    "closed_cleanly": np.uint8,
    "recovered_utc": str,
}


def write_recording(path: Path, channels: int, frames: int, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        "cargo", "run", "-q", "-p", "ephysd-hdf5", "--example", "write_sample_recording",
        "--", str(path), str(channels), str(frames), *extra,
    ]
    return subprocess.run(cmd, cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800, check=False)


@pytest.fixture(scope="module")
def recording(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("interop") / "ramp.h5"
    result = write_recording(path, CHANNELS, FRAMES, str(GAP_AT))
    assert result.returncode == 0, f"example failed:\n{result.stdout}\n{result.stderr}"
    assert path.is_file()
    assert "(1 gaps, 5 spikes, 3 stims)" in result.stdout, result.stdout
    return path


# ---- the values the example writes ----------------------------------------------------------


def frame_of(row: int, gap_at: int | None = GAP_AT) -> int:
    """Device frame index of a row."""
    return FIRST_FRAME_INDEX + row + (GAP_FRAMES if gap_at is not None and row >= gap_at else 0)


def timestamp_of(row: int, gap_at: int | None = GAP_AT) -> int:
    """A table's `timestamp` for an event at `row`: frames from `start_timestamp`."""
    return frame_of(row, gap_at) - FIRST_FRAME_INDEX


def expected_samples(frames: int, channels: int) -> np.ndarray:
    f = np.arange(frames, dtype=np.int64)[:, None]
    c = np.arange(channels, dtype=np.int64)[None, :]
    return ((f + 1000 * c) % 65536).astype(np.uint16).view(np.int16)


def expected_frame_index(frames: int) -> np.ndarray:
    rows = np.arange(frames, dtype=np.uint64)
    return FIRST_FRAME_INDEX + rows + np.where(rows >= GAP_AT, GAP_FRAMES, 0).astype(np.uint64)


def expected_analog_in(frames: int) -> np.ndarray:
    f = np.arange(frames, dtype=np.int64)[:, None]
    a = np.arange(ANALOG_INPUTS, dtype=np.int64)[None, :]
    return ((3 * f + 10_000 * a) % 65536).astype(np.uint16)


def expected_digital(frames: int) -> tuple[np.ndarray, np.ndarray]:
    f = np.arange(frames, dtype=np.int64)
    return (f // 16).astype(np.uint16), (1 << (f % 16)).astype(np.uint16)


def expected_snippet(k: int) -> np.ndarray:
    return (100.0 * k + (np.arange(SNIPPET, dtype=np.float32) - 25.0) / 2.0).astype(np.float32)


def expected_channels(channels: int) -> list[tuple]:
    """(native_index, name, port, chip, x_um, y_um, impedance_ohms, impedance_phase_deg)."""
    half = channels // 2
    rows = []
    for c in range(channels):
        port, i = ("A", c) if c < half else ("B", c - half)
        position = (16.0 * (c % 4), 20.0 * (c // 4))
        rows.append((c, f"{port}-{i:03d}", port, c // 4, *position, 100_000.0 + 1000.0 * c, -30.0 - c))
    return rows


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


def check_attributes(attrs: dict, *, typed: bool = True) -> None:
    """The root attributes of the FRAMES x CHANNELS recording with its gap; `typed`: the
    values still carry their stored numpy types (h5py, PyTables; RecordingView converts)."""
    assert set(ATTRIBUTE_TYPES) <= set(attrs), sorted(set(ATTRIBUTE_TYPES) - set(attrs))
    end = FIRST_FRAME_INDEX + FRAMES + GAP_FRAMES
    assert attrs["frames_per_second"] == FPS
    assert attrs["sampling_frequency"] == FPS
    assert attrs["channel_count"] == CHANNELS
    assert np.isclose(attrs["uV_per_sample_unit"], UV_PER_UNIT)
    assert attrs["start_timestamp"] == FIRST_FRAME_INDEX
    assert attrs["end_timestamp"] == end
    assert attrs["duration_frames"] == end - FIRST_FRAME_INDEX
    assert np.isclose(attrs["duration_seconds"], (end - FIRST_FRAME_INDEX) / FPS)
    assert attrs["gap_count"] == 1
    assert attrs["closed_cleanly"] == 1
    assert attrs["file_sequence"] == 1
    if typed:
        for name, kind in ATTRIBUTE_TYPES.items():
            if kind is str:
                assert isinstance(attrs[name], (str, np.str_)), (name, type(attrs[name]))
            else:
                assert np.asarray(attrs[name]).dtype == kind, (name, np.asarray(attrs[name]).dtype)
    assert as_text(attrs["software_version"]).startswith("ephysd ")
    assert as_text(attrs["device"]) == "ramp"
    assert as_text(attrs["device_serial"]) == DEVICE_SERIAL
    assert json.loads(as_text(attrs["chips"])) == CHIPS
    # UTF-8 survives: the config holds a "µ".
    assert json.loads(as_text(attrs["config"])) == CONFIG
    assert as_text(attrs["recording_type"]) == "continuous_and_spikes"
    assert as_text(attrs["port"]) == ""
    assert as_text(attrs["recovered_utc"]) == ""
    file_format = json.loads(as_text(attrs["file_format"]))
    assert file_format == {"version": "ephysd-2", "stim_and_spike_timestamps_relative_to_start": True}
    created = parse_utc(as_text(attrs["created_utc"]))
    ended = parse_utc(as_text(attrs["ended_utc"]))
    assert created <= ended
    assert abs(dt.datetime.now(dt.timezone.utc) - ended) < dt.timedelta(hours=1)


def check_spikes(rows: np.ndarray) -> None:
    """Structured rows of /spikes, as h5py or PyTables read them."""
    assert rows.dtype.names == ("timestamp", "channel", "samples", "unit")
    assert rows["samples"].shape == (len(SPIKES), SNIPPET)
    assert rows["samples"].dtype == np.float32
    assert rows["timestamp"].tolist() == [timestamp_of(r) for r, _, _ in SPIKES]
    # Relative to start_timestamp: the spike after the gap is 5 frames further on than its row.
    assert rows["timestamp"].tolist() == [100, 500, 1200, 1505, 2405]
    assert rows["channel"].tolist() == [c for _, c, _ in SPIKES]
    assert rows["unit"].tolist() == [u for _, _, u in SPIKES]
    for k in range(len(SPIKES)):
        np.testing.assert_array_equal(rows["samples"][k], expected_snippet(k))


def check_stims(rows: np.ndarray) -> None:
    assert rows.dtype.names == ("timestamp", "channel", "design_id")
    assert rows["timestamp"].tolist() == [timestamp_of(r) for r, _, _ in STIMS] == [200, 1305, 2205]
    assert rows["channel"].tolist() == [c for _, c, _ in STIMS]
    assert rows["design_id"].tolist() == [d for _, _, d in STIMS]


def check_gaps(rows: np.ndarray) -> None:
    assert rows.dtype.names == ("timestamp", "length", "reason")
    assert len(rows) == 1
    assert int(rows["timestamp"][0]) == GAP_AT
    assert int(rows["length"][0]) == GAP_FRAMES
    assert as_text(rows["reason"][0]) == "device"


def check_ground_truth(rows: np.ndarray) -> None:
    assert rows.dtype.names == ("timestamp", "channel", "unit", "peak_uv")
    assert rows["timestamp"].tolist() == [timestamp_of(r) for r, _, _, _ in GROUND_TRUTH]
    assert rows["channel"].tolist() == [c for _, c, _, _ in GROUND_TRUTH]
    assert rows["unit"].tolist() == [u for _, _, u, _ in GROUND_TRUTH]
    assert rows["peak_uv"].tolist() == [p for _, _, _, p in GROUND_TRUTH]


def check_channels(rows: np.ndarray) -> None:
    assert rows.dtype.names == (
        "native_index", "name", "port", "chip", "x_um", "y_um", "impedance_ohms", "impedance_phase_deg",
    )
    got = [
        (int(r["native_index"]), as_text(r["name"]), as_text(r["port"]), int(r["chip"]),
         float(r["x_um"]), float(r["y_um"]), float(r["impedance_ohms"]), float(r["impedance_phase_deg"]))
        for r in rows
    ]
    assert got == expected_channels(CHANNELS)


def check_data_stream(name: str, index: np.ndarray, data: np.ndarray) -> None:
    """A stream's index table and bytes, decoded here with msgpack."""
    _, entries = DATA_STREAMS[name]
    assert data.dtype == np.uint8
    assert index["timestamp"].tolist() == [timestamp_of(r) for r, _ in entries]
    assert int(index["start_index"][0]) == 0
    assert index["start_index"][1:].tolist() == index["end_index"][:-1].tolist()
    assert int(index["end_index"][-1]) == len(data)
    decoded = [
        msgpack.unpackb(data[int(e["start_index"]) : int(e["end_index"])].tobytes(), raw=False) for e in index
    ]
    assert decoded == [v for _, v in entries]


# ---- h5py -----------------------------------------------------------------------------------


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
        # Strings are stored variable-length UTF-8, which h5py hands back as str.
        for name, kind in ATTRIBUTE_TYPES.items():
            if kind is str:
                assert isinstance(attrs[name], str), (name, type(attrs[name]))
                info = h5py.check_string_dtype(f.attrs.get_id(name).dtype)
                assert info is not None and info.encoding == "utf-8" and info.length is None, name
        check_attributes(attrs)

        np.testing.assert_array_equal(samples[...], expected_samples(FRAMES, CHANNELS))
        np.testing.assert_array_equal(frame_index[...], expected_frame_index(FRAMES))
        jumps = np.flatnonzero(np.diff(frame_index[...].astype(np.int64)) != 1)
        assert jumps.tolist() == [GAP_AT - 1]
        microvolts = samples[10, 3] * attrs["uV_per_sample_unit"]
        assert np.isclose(microvolts, (10 + 3000) * UV_PER_UNIT)


def test_h5py_reads_board_streams(recording: Path) -> None:
    with h5py.File(recording, "r") as f:
        analog = f["analog_in"]
        assert analog.shape == (FRAMES, ANALOG_INPUTS)
        assert analog.dtype == np.dtype("<u2")
        # Frame-aligned datasets grow in lockstep: the same rows per chunk as /samples.
        assert analog.chunks[0] == f["samples"].chunks[0]
        np.testing.assert_array_equal(analog[...], expected_analog_in(FRAMES))
        din, dout = expected_digital(FRAMES)
        for name, expected in (("digital_in", din), ("digital_out", dout)):
            assert f[name].shape == (FRAMES,)
            assert f[name].dtype == np.dtype("<u2")
            np.testing.assert_array_equal(f[name][...], expected)
        assert f["digital_out"][17] == 2 and f["digital_in"][17] == 1


def test_h5py_reads_tables_and_data_streams(recording: Path) -> None:
    with h5py.File(recording, "r") as f:
        check_spikes(f["spikes"][...])
        check_stims(f["stims"][...])
        check_gaps(f["gaps"][...])
        assert len(f["gaps"]) == f.attrs["gap_count"]
        check_ground_truth(f["ground_truth"][...])
        check_channels(f["channels"][...])
        assert len(f["channels"]) == f.attrs["channel_count"]

        assert sorted(f["data_stream"]) == sorted(DATA_STREAMS)
        for name, (application, _) in DATA_STREAMS.items():
            group = f["data_stream"][name]
            assert group.attrs["name"] == name
            assert json.loads(group.attrs["application"]) == application
            check_data_stream(name, group["index"][...], group["data"][...])


# ---- PyTables -------------------------------------------------------------------------------


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
            np.testing.assert_array_equal(h5.root.analog_in.read(), expected_analog_in(FRAMES))
            din, dout = expected_digital(FRAMES)
            np.testing.assert_array_equal(h5.root.digital_in.read(), din)
            np.testing.assert_array_equal(h5.root.digital_out.read(), dout)


def test_pytables_reads_tables_and_data_streams(recording: Path) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", tables.exceptions.PerformanceWarning)
        warnings.simplefilter("error", tables.exceptions.DataTypeWarning)
        warnings.simplefilter("error", tables.exceptions.NaturalNameWarning)
        with tables.open_file(str(recording), mode="r") as h5:
            for name in ("spikes", "stims", "gaps", "ground_truth", "channels"):
                assert isinstance(h5.get_node(f"/{name}"), tables.Table), name
            spikes = h5.root.spikes
            check_spikes(spikes.read())
            # In-kernel queries work on the columns, as analysis code uses them.
            after_gap = spikes.read_where("(timestamp >= 1234) & (unit >= 0)")
            assert after_gap["channel"].tolist() == [1, 5]
            assert spikes.get_where_list("channel == 7").tolist() == [2]
            check_stims(h5.root.stims.read())
            assert h5.root.stims.read_where("design_id == 2")["timestamp"].tolist() == [1305]
            check_gaps(h5.root.gaps.read())
            check_ground_truth(h5.root.ground_truth.read())
            check_channels(h5.root.channels.read())

            for name, (application, _) in DATA_STREAMS.items():
                group = h5.get_node(f"/data_stream/{name}")
                assert as_text(group._v_attrs["name"]) == name
                assert json.loads(as_text(group._v_attrs["application"])) == application
                assert isinstance(group.index, tables.Table)
                check_data_stream(name, group.index.read(), group.data.read())


# ---- cl.RecordingView -----------------------------------------------------------------------


def test_cl_recording_view_reads_everything(recording: Path) -> None:
    with cl.RecordingView(str(recording)) as view:
        attrs = view.attributes
        check_attributes({name: attrs[name] for name in attrs.keys()}, typed=False)
        # RecordingView hands numbers back as Python numbers.
        assert attrs["channel_count"] == CHANNELS and isinstance(attrs["channel_count"], int)
        assert attrs["duration_frames"] == FRAMES + GAP_FRAMES and isinstance(attrs["duration_frames"], int)
        assert isinstance(attrs["frames_per_second"], float)
        file_format = json.loads(attrs["file_format"])
        assert file_format["stim_and_spike_timestamps_relative_to_start"] is True

        assert view.samples.shape == (FRAMES, CHANNELS)
        np.testing.assert_array_equal(view.samples[...], expected_samples(FRAMES, CHANNELS))
        np.testing.assert_array_equal(view.samples[:1000, 3:6], expected_samples(FRAMES, CHANNELS)[:1000, 3:6])
        microvolts = view.samples[10, 3] * attrs["uV_per_sample_unit"]
        assert np.isclose(microvolts, (10 + 3000) * UV_PER_UNIT)

        assert len(view.spikes) == len(SPIKES)
        check_spikes(view.spikes[:])
        # The CL API's documented query: spikes on channels 0 or 3 within the first 1000 frames.
        query = "((channel == 0) | (channel == 3)) & ((timestamp >= 0) & (timestamp < 1000))"
        found = view.spikes.get_where_list(query)
        assert found.tolist() == [0, 1]
        picked = view.spikes[found]
        assert picked["timestamp"].tolist() == [100, 500]
        np.testing.assert_array_equal(picked["samples"][1], expected_snippet(1))
        for spike in view.spikes:
            assert 0 <= spike["timestamp"] < attrs["duration_frames"]
            assert 0 <= spike["channel"] < attrs["channel_count"]

        assert len(view.stims) == len(STIMS)
        check_stims(view.stims[:])
        assert view.stims.get_where_list("channel == 2").tolist() == [0, 2]

        streams = view.data_streams
        assert sorted(streams.keys()) == sorted(DATA_STREAMS)
        assert len(streams) == 2 and "events" in streams
        for name, (application, entries) in DATA_STREAMS.items():
            stream = streams[name]
            assert len(stream) == len(entries)
            assert stream.attributes["name"] == name
            assert json.loads(stream.attributes["application"]) == application
            assert [int(t) for t in stream.keys()] == [timestamp_of(r) for r, _ in entries]
            assert list(stream.values()) == [v for _, v in entries]
            assert [(int(t), v) for t, v in stream.items()] == [(timestamp_of(r), v) for r, v in entries]
        events = streams["events"]
        assert events[0] == {"x": 1}
        assert events[1000] == ["of", "arbitrary", "size"]
        assert events[2005] == "and type."
        assert list(events[0:1001]) == [{"x": 1}, ["of", "arbitrary", "size"]]
        with pytest.raises(KeyError):
            events[2000]  # the entry at row 2000 is 5 frames on, after the gap
        assert streams["values"][1805] == {"a": [1, 2], "b": "µV"}

        # The rest of the layout is there through the underlying PyTables file.
        check_gaps(view.file.root.gaps.read())
        check_ground_truth(view.file.root.ground_truth.read())
        check_channels(view.file.root.channels.read())


# ---- sizes and safety -----------------------------------------------------------------------


def test_max_channel_count_uses_one_mib_chunks(tmp_path: Path) -> None:
    path = tmp_path / "wide.h5"
    result = write_recording(path, 1024, 700)
    assert result.returncode == 0, result.stderr
    with h5py.File(path, "r") as f:
        assert f["samples"].shape == (700, 1024)
        assert f["samples"].chunks == (512, 1024)
        assert f["analog_in"].chunks == (512, ANALOG_INPUTS)
        assert f.attrs["gap_count"] == 0
        assert len(f["gaps"]) == 0
        np.testing.assert_array_equal(f["samples"][...], expected_samples(700, 1024))
        # Only the events within the 700 frames are written (no gap: timestamp = row).
        assert f["spikes"]["timestamp"].tolist() == [100, 500]
        assert f["stims"]["timestamp"].tolist() == [200]
        assert f["ground_truth"]["timestamp"].tolist() == [101, 502]
        assert len(f["channels"]) == 1024
        assert f["channels"]["name"][511] == b"A-511" and f["channels"]["name"][512] == b"B-000"
        assert f["data_stream/values/index"]["timestamp"].tolist() == [0, 300, 600]
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
