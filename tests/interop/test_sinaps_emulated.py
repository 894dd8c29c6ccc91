"""The SmartBox Pro with a SiNAPS probe (smartbox-pro-sinaps-256, -512, -1024), brought up
against its emulated FPGA through both FrontPanel backends (in process, and the emulator's
copy of libokFrontPanel.so loaded at run time), driven by the real radiens-core
AllegoClient: the five Sinaps methods (LoadAllMosi, TransmitMosi, ReadWireOut,
GetSinapsStatusRegisters, FlashSinaps), their refusals, and recordings that hold exactly the
samples of the emulated pixels."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from radiens_core import AllegoClient
from radiens_core.exceptions import RadiensError, ServerCommunicationError

from conftest import REPO

TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug"
RATE = 30000

# backbone, the emulator's board, pixels (256 per shank).
MODELS = [
    ("smartbox-pro-sinaps-256", "sinaps-256", 256),
    ("smartbox-pro-sinaps-512", "sinaps-512", 512),
    ("smartbox-pro-sinaps-1024", "sinaps-1024", 1024),
]

# ephysd's model of the SmartBox Pro interface (drivers/src/sinaps/endpoints.rs).
WIRE_OUT_STATUS = 0x20
WIRE_OUT_ACTIVE_PIXELS_01 = 0x22
WIRE_OUT_DESIGN_ID = 0x3E
DESIGN_ID = int.from_bytes(b"SNPS", "little")
STATUS_CLOCK_LOCKED = 1 << 2
STATUS_PROBE_CONNECTED = 1 << 8
MOSI_REGISTERS = 40
VREF_FIRST = 1
PIXEL_MASK_FIRST = 8
FPGA_PART = "7a75tfgg484"
PREAMBLE = bytes([0x00, 0x09, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x0F, 0xF0, 0x00, 0x00, 0x01])
SYNC_WORD = bytes([0xAA, 0x99, 0x55, 0x66])


def tool(name: str) -> Path:
    path = TARGET / name
    if not path.exists():
        pytest.fail(f"{path} is missing: cargo build -p okfp-emu -p ephysd-drivers --examples (make test does)")
    return path


def start_box(start_daemon, backbone: str, board: str, backend: str, spec: str = "", **env: str):
    """A daemon on an emulated SmartBox Pro, in process or through the emulator's library."""
    env = {"EPHYSD_DEVICE__BACKBONE": backbone, "EPHYSD_CACHE__SECONDS": "3", **env}
    if backend == "in-process":
        env |= {"EPHYSD_DEVICE__FRONTPANEL": "emulated", "EPHYSD_DEVICE__EMULATOR": spec}
    else:
        env |= {
            "EPHYSD_DEVICE__FRONTPANEL": "library",
            "EPHYSD_DEVICE__FRONTPANEL_LIBRARY": str(tool("libokfp_emu.so")),
            "OKFP_EMU_SPEC": f"board={board} {spec}",
        }
    return start_daemon(**env)


def expected_signal(spec: str, frames: int, channels: int, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "expected.bin"
    subprocess.run([str(tool("examples/emulated_signal")), spec, str(RATE), str(frames), str(out)], check=True)
    return np.fromfile(out, dtype="<i2").reshape(-1, channels)


def record(client: AllegoClient, seconds: float) -> Path:
    client.start_streaming()
    client.start_recording()
    path = Path(client.get_status().recording.active_filename)
    time.sleep(seconds)
    client.stop_recording()
    client.stop_streaming()
    return path


def all_pixels(shanks: int) -> list[int]:
    """The bank that switches every pixel of `shanks` shanks on, references at 1.65 V."""
    vals = [0] * MOSI_REGISTERS
    for s in range(4):
        vals[VREF_FIRST + s] = 16500
    for s in range(shanks):
        for k in range(8):
            vals[PIXEL_MASK_FIRST + 8 * s + k] = -1  # all 32 bits, as a signed int32
    return vals


def bitfile(design: str, part: str = FPGA_PART, stream: bytes | None = None) -> bytes:
    """A Xilinx .bit file: preamble, fields a-d, then e with the bitstream."""
    if stream is None:
        stream = b"\xff" * 32 + SYNC_WORD + b"\x20" * 64
    out = bytearray(PREAMBLE)
    for key, text in ((b"a", design), (b"b", part), (b"c", "2024/05/01"), (b"d", "10:00:00")):
        data = text.encode() + b"\0"
        out += key + len(data).to_bytes(2, "big") + data
    out += b"e" + len(stream).to_bytes(4, "big") + stream
    return bytes(out)


def server_error(excinfo, code: str) -> str:
    assert type(excinfo.value) is ServerCommunicationError, repr(excinfo.value)
    msg = str(excinfo.value)
    assert f"StatusCode.{code}" in msg, msg
    return msg


@pytest.mark.parametrize("backend", ["in-process", "library"])
@pytest.mark.parametrize("backbone,board,channels", MODELS, ids=[m[0] for m in MODELS])
def test_every_model_records_exactly_its_emulated_pixels(start_daemon, tmp_path, backbone, board, channels, backend):
    start_box(start_daemon, backbone, board, backend, "seed=5")
    client = AllegoClient()
    try:
        status = client.get_status()
        per_port = {p.port.name: p.channel_count for p in status.ports if p.channel_count}
        assert per_port == {"ABCD"[s]: 256 for s in range(channels // 256)}, per_port
        regs = client.get_sinaps_status_registers()
        assert regs.probe_model == channels
        active = [regs.num_active_pixels_shank0, regs.num_active_pixels_shank1,
                  regs.num_active_pixels_shank2, regs.num_active_pixels_shank3]
        assert active == [256 if s < channels // 256 else 0 for s in range(4)], regs
        path = record(client, 0.6)
    finally:
        client.close()
    with h5py.File(path, "r") as f:
        samples = f["samples"][...]
        index = f["frame_index"][...]
        assert samples.shape[1] == channels
        assert len(index) > RATE // 4, len(index)
        assert np.all(np.diff(index) == 1), "frames lost or repeated"
        assert len(f["gaps"]) == 0
    expected = expected_signal(f"board={board} seed=5", int(index[-1]) + 1, channels, tmp_path)
    mismatched = np.flatnonzero(np.any(samples != expected[index], axis=1))
    assert mismatched.size == 0, f"{mismatched.size} frames differ, first at row {mismatched[:1]}"
    assert samples.std() > 5


def test_the_five_sinaps_methods_drive_the_probe_and_refuse_bad_input(start_daemon, tmp_path):
    """Status registers, a raw wire-out, a MOSI bank that switches pixels and references (and
    shows in a recording), a calibration with its progress, flashing a valid bitfile; a bad
    bank, wire-out address and bitfile are INVALID_ARGUMENT naming what is wrong, a flash
    while streaming FAILED_PRECONDITION."""
    start_box(start_daemon, "smartbox-pro-sinaps-512", "sinaps-512", "in-process", "seed=2")
    client = AllegoClient()
    try:
        regs = client.get_sinaps_status_registers()
        assert not regs.calibration_state and regs.calibration_progress == 0.0
        assert (regs.num_active_pixels_shank0, regs.num_active_pixels_shank1) == (256, 256)
        assert (regs.num_active_pixels_shank2, regs.num_active_pixels_shank3) == (0, 0)
        assert [regs.v_ref_ffa, regs.v_ref_ffb, regs.v_ref_ffc, regs.v_ref_ffd] == pytest.approx([1.65] * 4)
        assert not any([regs.is_error0, regs.is_error1, regs.is_error2, regs.is_error3])
        assert (regs.host_counter, regs.fpga_counter) == (1, 1)
        assert regs.firmware_version == "ephysd_sinaps_emulator"
        assert (regs.probe_generation, regs.probe_model) == (1, 512)

        assert client.read_wire_out(WIRE_OUT_DESIGN_ID) == DESIGN_ID
        assert client.read_wire_out(WIRE_OUT_STATUS) == STATUS_CLOCK_LOCKED | STATUS_PROBE_CONNECTED
        assert client.read_wire_out(WIRE_OUT_ACTIVE_PIXELS_01) == 256 | (256 << 16)
        with pytest.raises(RadiensError) as err:
            client.read_wire_out(0x10)
        msg = server_error(err, "INVALID_ARGUMENT")
        assert "wire_out_address = 16" in msg and "32..=63" in msg, msg

        # Shank 0: the first 64 pixels only; shank 1 off; FFB at 2.5 V.
        vals = all_pixels(2)
        for k in range(2, 8):
            vals[PIXEL_MASK_FIRST + k] = 0
        for k in range(8):
            vals[PIXEL_MASK_FIRST + 8 + k] = 0
        vals[VREF_FIRST + 1] = 25000
        client.load_all_mosi(vals)
        client.transmit_mosi()
        regs = client.get_sinaps_status_registers()
        assert (regs.num_active_pixels_shank0, regs.num_active_pixels_shank1) == (64, 0)
        assert regs.v_ref_ffb == pytest.approx(2.5)
        assert (regs.host_counter, regs.fpga_counter) == (2, 2)

        # A bad bank: named by register, nothing changes.
        bad = list(vals)
        bad[VREF_FIRST + 2] = 40000
        with pytest.raises(RadiensError) as err:
            client.load_all_mosi(bad)
        msg = server_error(err, "INVALID_ARGUMENT")
        assert "register_vals[3] = 40000" in msg and "0..=33000" in msg, msg
        with pytest.raises(RadiensError) as err:
            client.load_all_mosi([1, 2, 3])
        msg = server_error(err, "INVALID_ARGUMENT")
        assert "register_vals = 3 values" in msg and "exactly 40" in msg, msg
        assert client.get_sinaps_status_registers().num_active_pixels_shank0 == 64

        # A recording: the pixels switched off read 0, the others carry the signal.
        path = record(client, 0.4)
        with h5py.File(path, "r") as f:
            samples, index = f["samples"][...], f["frame_index"][...]
        expected = expected_signal("board=sinaps-512 seed=2", int(index[-1]) + 1, 512, tmp_path)[index]
        assert samples.shape[1] == 512
        assert np.array_equal(samples[:, :64], expected[:, :64])
        assert not samples[:, 64:].any()

        # A calibration: running, with its progress, then done.
        vals[0] = 1
        client.load_all_mosi(vals)
        client.transmit_mosi()
        regs = client.get_sinaps_status_registers()
        assert regs.calibration_state and 0.0 <= regs.calibration_progress < 1.0, regs
        time.sleep(0.7)
        regs = client.get_sinaps_status_registers()
        assert not regs.calibration_state and regs.calibration_progress == 1.0, regs

        # Flashing: a bad file is refused naming it and what is wrong; a good one runs.
        truncated = tmp_path / "truncated.bit"
        truncated.write_bytes(bitfile("sinaps_lab_v2")[:-5])
        with pytest.raises(RadiensError) as err:
            client.flash_sinaps(str(truncated))
        msg = server_error(err, "INVALID_ARGUMENT")
        assert str(truncated) in msg and "declares" in msg, msg
        other_part = tmp_path / "other_part.bit"
        other_part.write_bytes(bitfile("sinaps_lab_v2", part="7a200tfbg484"))
        with pytest.raises(RadiensError) as err:
            client.flash_sinaps(str(other_part))
        msg = server_error(err, "INVALID_ARGUMENT")
        assert "other_part.bit" in msg and "7a200tfbg484" in msg, msg
        assert client.get_sinaps_status_registers().firmware_version == "ephysd_sinaps_emulator"

        good = tmp_path / "sinaps_lab_v2.bit"
        good.write_bytes(bitfile("sinaps_lab_v2;Version=2"))
        client.start_streaming()
        with pytest.raises(RadiensError) as err:
            client.flash_sinaps(str(good))
        msg = server_error(err, "FAILED_PRECONDITION")
        assert "stop streaming before flashing the Sinaps FPGA" in msg, msg
        client.stop_streaming()
        client.flash_sinaps(str(good))
        regs = client.get_sinaps_status_registers()
        assert regs.firmware_version == "sinaps_lab_v2;Version=2"
        assert (regs.num_active_pixels_shank0, regs.num_active_pixels_shank1) == (256, 256), "brought up again"
    finally:
        client.close()


def test_a_sinaps_box_reports_its_corrupt_and_dropped_frames_as_gaps(start_daemon, tmp_path):
    """Frames dropped on the box and a frame corrupted on the wire are /gaps rows of their
    exact length; every frame kept is the box's own."""
    spec = "seed=4 faults=drop@6000+40,corrupt@12000"
    start_box(start_daemon, "smartbox-pro-sinaps-256", "sinaps-256", "in-process", spec)
    client = AllegoClient()
    try:
        client.start_recording()
        path = Path(client.get_status().recording.active_filename)
        deadline = time.monotonic() + 10
        while client.get_status().recording.duration < 0.8:
            assert time.monotonic() < deadline, "no recording"
            time.sleep(0.05)
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    with h5py.File(path, "r") as f:
        index, samples, gaps = f["frame_index"][...], f["samples"][...], f["gaps"][...]
    first = int(index[0])
    rows = [(int(g["timestamp"]) + first, int(g["length"]), g["reason"].decode()) for g in gaps]
    assert rows == [(6000, 40, "device"), (12000, 1, "device")], rows
    expected = expected_signal(f"board=sinaps-256 {spec}", int(index[-1]) + 1, 256, tmp_path)
    assert np.array_equal(samples, expected[index])


def test_every_sinaps_method_is_refused_on_another_device_naming_it(start_daemon):
    """On the simulated device each of the five methods is FAILED_PRECONDITION, naming the
    device that is open and what the method needs."""
    start_daemon()
    client = AllegoClient()
    try:
        for call in (
            lambda: client.load_all_mosi(all_pixels(1)),
            client.transmit_mosi,
            lambda: client.read_wire_out(WIRE_OUT_STATUS),
            client.get_sinaps_status_registers,
            lambda: client.flash_sinaps("/nonexistent/sinaps.bit"),
        ):
            with pytest.raises(RadiensError) as err:
                call()
            msg = server_error(err, "FAILED_PRECONDITION")
            assert "SmartBox Pro with a Sinaps probe" in msg and "(sim-spikes)" in msg, msg
    finally:
        client.close()
