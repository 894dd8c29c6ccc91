"""The real radiens-core AllegoClient (PyPI) driving ephysd end to end."""

from __future__ import annotations

import time
from pathlib import Path

import grpc
import h5py
import pytest
from radiens_core import AllegoClient
from radiens_core._generated import allegoserver_pb2_grpc, common_pb2
from radiens_core.models.common import ServiceEndpoint
from radiens_core.models.status import RecordMode, StreamMode

CHANNELS = 32
RATE = 30_000.0

ALLEGO_SERVICES = [
    ServiceEndpoint.ALLEGO_LIFECYCLE,
    ServiceEndpoint.ALLEGO_CORE,
    ServiceEndpoint.ALLEGO_PCACHE,
    ServiceEndpoint.ALLEGO_KPI,
    ServiceEndpoint.ALLEGO_NEURONS,
]


def check_recording(path: Path, min_seconds: float) -> h5py.File:
    f = h5py.File(path, "r")
    samples = f["samples"]
    assert samples.dtype == "int16"
    assert samples.shape[1] == CHANNELS
    assert samples.shape[0] >= min_seconds * RATE, f"only {samples.shape[0]} frames"
    assert f.attrs["channel_count"] == CHANNELS
    assert f.attrs["frames_per_second"] == RATE
    assert abs(f.attrs["uV_per_sample_unit"] - 0.195) < 1e-9
    assert f.attrs["duration_frames"] == samples.shape[0]
    assert abs(f.attrs["duration_seconds"] - samples.shape[0] / RATE) < 1e-6
    assert f.attrs["end_timestamp"] - f.attrs["start_timestamp"] == samples.shape[0]
    for key in ("created_utc", "ended_utc"):
        value = f.attrs[key]
        value = value.decode() if isinstance(value, bytes) else str(value)
        assert value.endswith("Z") or "+00:00" in value, f"{key} = {value!r}"
    # The simulated device produces a live signal: not all zeros, within the int16 range used.
    block = samples[:3000, :]
    assert block.std() > 5, "recorded samples look flat"
    return f


def test_record_two_seconds_then_sigterm(daemon):
    client = AllegoClient()
    for service in ALLEGO_SERVICES:
        client.healthcheck(service)
    assert client.server_version == (5, 7, 0)

    status = client.get_status()
    assert status.streaming.stream_mode == StreamMode.OFF
    assert status.recording.record_mode == RecordMode.OFF
    assert status.is_connected
    assert sum(p.channel_count for p in status.ports) == CHANNELS

    client.start_streaming()
    assert client.get_status().streaming.stream_mode == StreamMode.ON
    client.start_recording()
    status = client.get_status()
    assert status.recording.record_mode == RecordMode.ON
    active = Path(status.recording.active_filename)
    time.sleep(2.0)
    assert client.get_status().recording.duration > 1.0
    client.stop_recording()
    assert client.get_status().recording.record_mode == RecordMode.OFF
    assert active.exists()

    with check_recording(active, 1.5) as f:
        assert f.attrs["closed_cleanly"] == 1

    # A second recording is running when SIGTERM arrives: it must be finalized too.
    client.start_recording()
    second = Path(client.get_status().recording.active_filename)
    assert second != active
    time.sleep(1.0)
    client.close()
    code, seconds = daemon.terminate(timeout=5.0)
    assert code == 0, daemon.output()
    assert seconds < 5.0
    with check_recording(active, 1.5):
        pass
    with check_recording(second, 0.5) as f:
        assert f.attrs["closed_cleanly"] == 1


def test_recording_config_round_trip_and_validation(daemon, tmp_path):
    client = AllegoClient()
    cfg = client.get_recording_config()
    assert cfg.base_file_name == "interop"
    new_dir = tmp_path / "elsewhere"
    new_dir.mkdir()
    client.update_recording_config(cfg.model_copy(update={"base_file_path": str(new_dir), "base_file_name": "night"}))
    cfg2 = client.get_recording_config()
    assert (cfg2.base_file_path, cfg2.base_file_name) == (str(new_dir), "night")

    with pytest.raises(Exception) as missing:
        client.update_recording_config(cfg.model_copy(update={"base_file_path": str(tmp_path / "missing")}))
    assert "baseFilePath" in str(missing.value)

    client.start_recording()
    time.sleep(0.5)
    with pytest.raises(Exception) as during:
        client.update_recording_config(cfg)
    assert "recording is on" in str(during.value)
    with pytest.raises(Exception) as stop_stream:
        client.stop_streaming()
    assert "recording is on" in str(stop_stream.value)
    client.stop_recording()
    client.stop_streaming()
    files = list(new_dir.glob("night*.h5"))
    assert len(files) == 1, files
    client.close()


def test_methods_outside_this_version_answer_unimplemented_by_name(daemon):
    with grpc.insecure_channel("localhost:50051") as channel:
        stub = allegoserver_pb2_grpc.AllegoCoreStub(channel)
        with pytest.raises(grpc.RpcError) as err:
            stub.GetStimParams(common_pb2.StandardRequest())
        assert err.value.code() == grpc.StatusCode.UNIMPLEMENTED
        assert "allego.AllegoCore/GetStimParams" in err.value.details()
        stub.Healthcheck(common_pb2.StandardRequest())


def test_offline_license_reports_a_stable_hardware_uuid(daemon):
    with grpc.insecure_channel("localhost:50055") as channel:
        stub = allegoserver_pb2_grpc.AllegoLifecycleStub(channel)
        a = stub.GetOfflineLicenseStatus(common_pb2.StandardRequest()).hardwareUUID
        b = stub.GetOfflineLicenseStatus(common_pb2.StandardRequest()).hardwareUUID
    assert a == b and len(a) == 36
