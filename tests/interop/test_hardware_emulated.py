"""Every board backbone (RHD and RHS headstages), brought up against the emulated board through both FrontPanel
backends (in process, and the production loading path: the emulator's copy of
libokFrontPanel.so loaded at run time), driven by the real radiens-core AllegoClient: the
port scan finds the emulated headstages, and a recording holds exactly the samples the
emulated electrodes carried, frame for frame."""

from __future__ import annotations

import os
import subprocess
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
from radiens_core import AllegoClient

from conftest import REPO

TARGET = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target") / "debug"
RATE = 30000

# backbone, the emulator's board name, the headstages, and the channels expected per port.
BOARDS = [
    ("intan-usb2", "rhd-usb-interface", "ports=A:2132+2216,C:2164 delays=A:5,C:9", {"A": 48, "C": 64}),
    ("open-ephys-usb2", "open-ephys", "ports=B:2132 delays=B:12", {"B": 32}),
    ("open-ephys-usb3", "open-ephys-usb3", "ports=A:2164,C:2132+2216 delays=C:8", {"A": 64, "C": 48}),
    ("intan-recording-controller-512", "rhd-controller", "ports=A:2164+2164,D:2132", {"A": 128, "D": 32}),
    ("intan-recording-controller-1024", "rhd-controller", "ports=A:2164,H:2164+2216 delays=H:11", {"A": 64, "H": 80}),
    ("xdaq-one-rec", "xdaq-rhd-gen1", "ports=A:2164,B:2132", {"A": 64, "B": 32}),
    ("xdaq-core-rec", "xdaq-rhd-gen1", "ports=C:2164", {"C": 64}),
    ("xdaq-gen2-one-rec", "xdaq-rhd-gen2", "ports=A:2132+2132", {"A": 64}),
    ("xdaq-gen2-core-rec", "xdaq-rhd-gen2", "ports=E:2216", {"E": 16}),
    # RHS2116 stimulation/recording headstages (recorded here; stimulation is tested in drivers/tests/rhs_stim.rs).
    ("xdaq-one-stim", "xdaq-rhs-gen1", "ports=A:2116+2116,C:2116 delays=C:7", {"A": 32, "C": 16}),
    ("xdaq-core-stim", "xdaq-rhs-gen1", "ports=B:2116", {"B": 16}),
    ("xdaq-gen2-one-stim", "xdaq-rhs-gen2", "ports=D:2116+2116", {"D": 32}),
    ("xdaq-gen2-core-stim", "xdaq-rhs-gen2", "ports=A:2116", {"A": 16}),
]


def tool(name: str) -> Path:
    path = TARGET / name
    if not path.exists():
        pytest.fail(f"{path} is missing: cargo build -p okfp-emu -p ephysd-drivers --examples (make test does)")
    return path


def start_controller(start_daemon, headstages: str, **env: str):
    """A daemon on an emulated 1024-channel controller with `headstages` (its emulator spec),
    in process, plus any other `EPHYSD_*` overrides."""
    return start_daemon(
        EPHYSD_DEVICE__BACKBONE="intan-recording-controller-1024",
        EPHYSD_DEVICE__FRONTPANEL="emulated",
        EPHYSD_DEVICE__EMULATOR=headstages,
        **env,
    )


def expected_signal(spec: str, frames: int, tmp_path: Path) -> np.ndarray:
    out = tmp_path / "expected.bin"
    subprocess.run([str(tool("examples/emulated_signal")), spec, str(RATE), str(frames), str(out)], check=True)
    return np.fromfile(out, dtype="<i2")


@pytest.mark.parametrize("backend", ["in-process", "library"])
@pytest.mark.parametrize("backbone,board,headstages,per_port", BOARDS, ids=[b[0] for b in BOARDS])
def test_board_scan_and_recording_match_the_emulated_headstages(
    start_daemon, tmp_path, backbone, board, headstages, per_port, backend
):
    spec = f"board={board} serial=EMU{len(backbone):07d} {headstages}"
    env = {"EPHYSD_DEVICE__BACKBONE": backbone}
    if backend == "in-process":
        env |= {"EPHYSD_DEVICE__FRONTPANEL": "emulated", "EPHYSD_DEVICE__EMULATOR": headstages}
    else:
        env |= {
            "EPHYSD_DEVICE__FRONTPANEL": "library",
            "EPHYSD_DEVICE__FRONTPANEL_LIBRARY": str(tool("libokfp_emu.so")),
            "OKFP_EMU_SPEC": spec,
        }
    daemon = start_daemon(**env)
    client = AllegoClient()
    try:
        status = client.get_status()
        found = {p.port: p.channel_count for p in status.ports if p.channel_count}
        assert {k.name: v for k, v in found.items()} == per_port, (found, daemon.output())
        client.start_streaming()
        client.start_recording()
        path = Path(client.get_status().recording.active_filename)
        time.sleep(1.0)
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    channels = sum(per_port.values())
    with h5py.File(path, "r") as f:
        samples = f["samples"][...]
        index = f["frame_index"][...]
        assert samples.shape[1] == channels
        assert len(index) > RATE // 2, len(index)
        assert np.all(np.diff(index) == 1), "frames lost or repeated"
        assert len(f["gaps"]) == 0
    expected = expected_signal(spec, int(index[-1]) + 1, tmp_path).reshape(-1, channels)
    mismatched = np.flatnonzero(np.any(samples != expected[index], axis=1))
    assert mismatched.size == 0, f"{mismatched.size} frames differ, first at row {mismatched[:1]}"
    # A live signal, not a constant.
    assert samples.std() > 5


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"timed out waiting for {what}")


@pytest.mark.parametrize(
    "fault,said,longest",
    [("unplug@1.5+1.0", "is gone", 3.5), ("stall@1.5", "stopped delivering data", 5.0)],
    ids=["unplugged", "stalled"],
)
def test_a_board_that_goes_away_is_reopened_and_the_recording_marks_the_outage(
    start_daemon, tmp_path, fault, said, longest
):
    """The emulated controller disappears 1.5 s into the run and is back 1 s later (or its
    pipe stops for good, which takes FrontPanel's 2 s to tell): the first file keeps every
    frame before, status says what happened, streaming resumes by itself and the recording
    goes on in a second file whose /gaps holds the outage."""
    headstages = f"ports=A:2164 faults={fault}"
    daemon = start_controller(start_daemon, headstages)
    client = AllegoClient()
    try:
        client.start_streaming()
        client.start_recording()
        first = Path(client.get_status().recording.active_filename)
        gone = wait_for(
            lambda: (s := client.get_status()).recording.error and said in s.recording.error and s, 8, "the fault"
        )
        assert "opening it again" in gone.recording.error, gone.recording.error
        back = wait_for(
            lambda: (s := client.get_status()).recording.active_filename
            and Path(s.recording.active_filename) != first
            and s,
            8,
            "the board to come back",
        )
        second = Path(back.recording.active_filename)
        # Status says the board came back, then that the new file holds the outage as a gap.
        error = back.recording.error
        assert "streaming resumed" in error or ("gap in" in error and second.name in error), error
        time.sleep(1.0)
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    spec = f"board=rhd-controller {headstages}"
    with h5py.File(first, "r") as f:
        index1, samples1 = f["frame_index"][...], f["samples"][...]
        assert f.attrs["closed_cleanly"] == 1
    with h5py.File(second, "r") as f:
        index2, samples2 = f["frame_index"][...], f["samples"][...]
        gaps = f["gaps"][...]
    assert np.all(np.diff(index1) == 1) and np.all(np.diff(index2) == 1)
    # Nothing before the unplug is missing: the board stopped 1.5 s into its run.
    assert index1[-1] + 1 >= int(1.4 * RATE), index1[-1]
    expected = expected_signal(spec, int(index1[-1]) + 1, tmp_path).reshape(-1, 64)
    assert np.array_equal(samples1, expected[index1])
    # The outage is one gap of about its length, between the last frame before and the first
    # after (/gaps timestamps count from the file's first frame: this one lies before it).
    assert len(gaps) == 1, gaps
    assert gaps[0]["length"] == int(index2[0]) - int(index1[-1]) - 1
    assert gaps[0]["timestamp"] == -gaps[0]["length"]
    assert 0.9 * RATE < gaps[0]["length"] < longest * RATE, gaps
    assert gaps[0]["reason"].decode() == "device"
    # The returned board streams its electrodes again from the start of its new run.
    again = expected_signal(spec, len(index2), tmp_path).reshape(-1, 64)
    assert np.array_equal(samples2, again)
    log = daemon.output()
    assert said in log and "streaming resumed, recording continues in a new file" in log, log


def test_impedance_by_port_and_sinaps_methods_refused_naming_the_device(daemon):
    """GetIntanImpedance measures the port asked for (not while streaming); the Sinaps methods
    are refused on a device without a Sinaps probe, naming the device that is open (they work
    on a SmartBox Pro: test_sinaps_emulated.py)."""
    client = AllegoClient()
    try:
        z = client.get_intan_impedance("a").measurements
        assert [m.ntv_chan_idx for m in z] == list(range(32))
        assert all(1e4 < m.magnitude_ohm < 1e8 and -90 <= m.phase_deg <= 0 for m in z), z[:3]
        with pytest.raises(Exception) as no_port:
            client.get_intan_impedance("b")
        assert "port = B" in str(no_port.value) and "A" in str(no_port.value), no_port.value
        client.start_streaming()
        with pytest.raises(Exception) as streaming:
            client.get_intan_impedance("a")
        assert "stop streaming before measuring impedance" in str(streaming.value), streaming.value
        for call in (
            lambda: client.load_all_mosi([1, 2, 3]),
            client.transmit_mosi,
            lambda: client.read_wire_out(0x20),
            client.get_sinaps_status_registers,
            lambda: client.flash_sinaps("/nonexistent/sinaps.bit"),
        ):
            with pytest.raises(Exception) as refused:
                call()
            message = str(refused.value)
            assert "Sinaps" in message and "sim-spikes" in message, message
            assert "FAILED_PRECONDITION" in message, message
        client.stop_streaming()
    finally:
        client.close()


def test_lost_and_corrupt_frames_are_gaps_in_the_recording_and_lines_in_status(start_daemon, tmp_path):
    """A block of frames dropped on the board and a frame corrupted on the wire: recording
    goes on, each is a /gaps row of its exact length, status and the journal say what the
    link lost, and every frame kept is the board's own."""
    headstages = "ports=B:2132 faults=drop@15000+100,corrupt@40000"
    daemon = start_controller(start_daemon, headstages)
    client = AllegoClient()
    try:
        client.start_recording()
        path = Path(client.get_status().recording.active_filename)
        wait_for(lambda: client.get_status().recording.duration > 2.5, 10, "2.5 s of recording")
        status_error = client.get_status().recording.error
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    with h5py.File(path, "r") as f:
        index, samples, gaps = f["frame_index"][...], f["samples"][...], f["gaps"][...]
    first = int(index[0])
    rows = [(int(g["timestamp"]) + first, int(g["length"]), g["reason"].decode()) for g in gaps]
    assert rows == [(15000, 100, "device"), (40000, 1, "device")], rows
    expected = expected_signal(f"board=rhd-controller {headstages}", int(index[-1]) + 1, tmp_path).reshape(-1, 32)
    assert np.array_equal(samples, expected[index])
    log = daemon.output()
    assert "100 frame(s) lost on the USB link" in log and "1 corrupt USB read(s)" in log, log
    assert status_error, "status names what was lost"


def test_board_impedance_through_allego_client_matches_the_emulated_electrodes(start_daemon):
    """GetIntanImpedance on a board runs Intan's measurement (test currents through the chip's
    capacitors, three scales) and reads each emulated electrode within 5 % and 5 degrees."""
    headstages = "ports=A:2164,C:2216 pace=free seed=4"
    start_controller(start_daemon, headstages)
    out = subprocess.run(
        [str(tool("examples/emulated_impedance")), f"board=rhd-controller {headstages}", "1000"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    truth = {int(c): (float(m), float(p)) for c, m, p in (line.split() for line in out.splitlines())}
    client = AllegoClient()
    try:
        for port, channels in (("a", range(0, 64)), ("c", range(64, 80))):
            measured = client.get_intan_impedance(port).measurements
            assert [m.ntv_chan_idx for m in measured] == list(channels)
            for m in measured:
                magnitude, phase = truth[m.ntv_chan_idx]
                assert abs(m.magnitude_ohm / magnitude - 1) < 0.05, (m, magnitude)
                assert abs(m.phase_deg - phase) < 5, (m, phase)
    finally:
        client.close()


@pytest.mark.parametrize("accelerated", ["false", "true"])
def test_a_recording_replays_through_the_same_path_frame_for_frame(start_daemon, tmp_path, accelerated):
    """sim-datasource plays one of ephysd's recordings back as a device: a recording made of
    the replay holds the original's samples, inputs and gaps at the same frames, paced to the
    recording's rate or as fast as the pipeline takes it, and the stream ends with the file."""
    first = start_daemon()
    client = AllegoClient()
    try:
        client.start_recording()
        original = Path(client.get_status().recording.active_filename)
        wait_for(lambda: client.get_status().recording.duration > 2.0, 10, "2 s of recording")
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    assert first.terminate()[0] == 0
    with h5py.File(original, "r") as f:
        o_index, o_samples, o_din = f["frame_index"][...], f["samples"][...], f["digital_in"][...]
        o_ain = f["analog_in"][...]
    daemon = start_daemon(
        EPHYSD_DEVICE__BACKBONE="sim-datasource",
        EPHYSD_DEVICE__REPLAY_FILE=str(original),
        EPHYSD_DEVICE__ACCELERATED=accelerated,
        EPHYSD_RECORDING__BASE_NAME="replayed",
    )
    client = AllegoClient()
    try:
        status = client.get_status()
        assert sum(p.channel_count for p in status.ports) == o_samples.shape[1]
        client.start_recording()
        replayed = Path(client.get_status().recording.active_filename)
        ended = wait_for(
            lambda: (s := client.get_status()).recording.error and "ended" in s.recording.error and s, 15, "the end of the file"
        )
        assert "the source has ended" in ended.recording.error, ended.recording.error
    finally:
        client.close()
    with h5py.File(replayed, "r") as f:
        r_index, r_samples, r_din, r_ain = f["frame_index"][...], f["samples"][...], f["digital_in"][...], f["analog_in"][...]
    # Replayed frame k is the original's frame first + k, row k of the original (it has no gaps).
    assert np.all(np.diff(o_index) == 1)
    rows = r_index
    assert r_index[-1] == o_index[-1] - o_index[0], "the replay ran to the file's last frame"
    assert np.array_equal(r_samples, o_samples[rows])
    assert np.array_equal(r_din, o_din[rows]) and np.array_equal(r_ain, o_ain[rows])
    if accelerated == "false":
        assert len(r_index) > 0.8 * len(o_index), "a paced replay is recorded from (near) its start"
    assert "replay of" in daemon.output()


def test_a_manual_cable_delay_reaches_the_board(start_daemon, tmp_path):
    """update_core_config(cable_delay=...) sets the port's MISO sampling delay on the board: a
    delay the emulated cable cannot take garbles that port's samples (and only that port's),
    and automatic gives the port scan's choice back."""
    from radiens_core.models.core_config import CableDelay
    from radiens_core.models.ports import Port

    headstages = "ports=A:2132,C:2132 delays=A:3,C:3 pace=free"
    start_controller(start_daemon, headstages)
    spec = f"board=rhd-controller {headstages}"

    def record() -> tuple[np.ndarray, np.ndarray]:
        client.start_recording()
        path = Path(client.get_status().recording.active_filename)
        wait_for(lambda: client.get_status().recording.duration > 0.3, 10, "a recording")
        client.stop_recording()
        client.stop_streaming()
        with h5py.File(path, "r") as f:
            return f["frame_index"][...], f["samples"][...]

    client = AllegoClient()
    try:
        client.update_core_config(cable_delay=CableDelay(port=Port.C, cable_delay=12, is_auto=False))
        assert client.get_core_config().cable_delays[Port.C.value] == CableDelay(port=Port.C, cable_delay=12, is_auto=False)
        index, samples = record()
        expected = expected_signal(spec, int(index[-1]) + 1, tmp_path).reshape(-1, 64)[index]
        assert np.array_equal(samples[:, :32], expected[:, :32]), "port A is untouched"
        assert not np.array_equal(samples[:, 32:], expected[:, 32:]), "port C sampled at the wrong moment"
        client.update_core_config(cable_delay=CableDelay(port=Port.C, cable_delay=0, is_auto=True))
        index, samples = record()
        expected = expected_signal(spec, int(index[-1]) + 1, tmp_path).reshape(-1, 64)[index]
        assert np.array_equal(samples, expected)
    finally:
        client.close()


def test_a_1024_channel_board_loses_nothing_while_streaming_starts(start_daemon):
    """The primary cache of 1024 channels takes seconds to build; the board is started only
    once it is ready, so its FIFO (about 2 s of 1024 channels) never overflows at the start."""
    ports = ",".join(f"{p}:2164+2164" for p in "ABCDEFGH")
    daemon = start_controller(start_daemon, f"ports={ports}", EPHYSD_CACHE__SECONDS="60")
    client = AllegoClient()
    try:
        client.start_streaming()
        client.start_recording()
        path = Path(client.get_status().recording.active_filename)
        wait_for(lambda: client.get_status().recording.duration > 1.0, 15, "a second of recording")
        status = client.get_status()
        client.stop_recording()
        client.stop_streaming()
    finally:
        client.close()
    assert not status.recording.error, status.recording.error
    with h5py.File(path, "r") as f:
        assert f["samples"].shape[1] == 1024
        assert len(f["gaps"]) == 0
    assert "lost on the USB link" not in daemon.output()
