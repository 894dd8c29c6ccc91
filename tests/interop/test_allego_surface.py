"""The Allego surface beyond record/stream, driven through the real radiens-core AllegoClient:
status, health and version, channel metadata and probe maps, port scans, channel selection and
colour groups, signal reads from the primary cache (`get_signals`), the core configuration
(sample rate, cable delays) and restarts into other backbone modes.

Signal values are checked against what the simulated device is known to generate (see
`drivers/src/sim/`): with `sim-sine`, AMP channel k carries a 100 µV sine at
1000, 500, 250, 100, 50, 20, 10, 4 Hz (k mod 8); analog input 0 is a 1 Hz ±2 V sine and the
other inputs 0 V; digital input line 0 is high for 10 ms once a second, the other lines and
all digital outputs low.

The deprecated 0.0.9 methods (`set_stream_state`, `set_record_state`, `set_core_config`,
`set_recording_config`) do not exist in radiens-core 0.1.2 and sent the same RPCs as their
successors, so they need no tests of their own.
"""

from __future__ import annotations

import math
import time
import tomllib
from pathlib import Path

import h5py
import numpy as np
import pytest
from radiens_core import AllegoClient
from radiens_core.exceptions import RadiensError, ServerCommunicationError, TimeRangeError
from radiens_core.models.channels import COLOR_GROUP_UNSET, SITE_NUM_UNSET, SignalUnits
from radiens_core.models.common import ServiceEndpoint
from radiens_core.models.core_config import CableDelay
from radiens_core.models.dataset import TimeRangeSpec
from radiens_core.models.ports import Port
from radiens_core.models.signals import SignalType
from radiens_core.models.status import BackboneMode, RecordMode, StreamMode

REPO = Path(__file__).resolve().parents[2]
CHANNELS = 32
RATE = 30_000.0
N_AIN, N_DIN, N_DOUT = 8, 16, 16
SINE_TARGETS_HZ = [1000.0, 500.0, 250.0, 100.0, 50.0, 20.0, 10.0, 4.0]
ALL_TYPES = {"amp": "all", "ain": "all", "din": "all", "dout": "all"}
SELECTED_TYPES = {"amp": "selected", "ain": "selected", "din": "selected", "dout": "selected"}
UV_PER_UNIT = 0.195
AIN_VOLTS_PER_CODE = 312.5e-6
AMP, AIN, DIN, DOUT = SignalType.AMP, SignalType.AIN, SignalType.DIN, SignalType.DOUT


# --------------------------------------------------------------------------------------------
# helpers


def wait_for_cache(client: AllegoClient, seconds: float, *, oldest_after: float | None = None, timeout: float = 15.0):
    """Polls get_status until the primary cache holds `seconds` (and, if given, its oldest
    sample is later than `oldest_after`); returns [oldest, newest]."""
    deadline = time.monotonic() + timeout
    while True:
        r = client.get_status().streaming.primary_cache_t_range
        if len(r) == 2 and r[1] - r[0] >= seconds and (oldest_after is None or r[0] > oldest_after):
            return r
        assert time.monotonic() < deadline, f"cache range still {r} after {timeout} s"
        time.sleep(0.05)


def stream(client: AllegoClient, seconds: float) -> list[float]:
    client.start_streaming()
    return wait_for_cache(client, seconds)


def peak_hz(x: np.ndarray, fs: float) -> float:
    spectrum = np.abs(np.fft.rfft(x - x.mean()))
    return float(np.fft.rfftfreq(len(x), 1 / fs)[np.argmax(spectrum)])


def power_below(x: np.ndarray, fs: float, hz: float) -> float:
    """Fraction of the (mean-removed) power below `hz`."""
    p = np.abs(np.fft.rfft(x - x.mean())) ** 2
    return float(p[np.fft.rfftfreq(len(x), 1 / fs) < hz].sum() / p.sum())


def zero_crossings(x: np.ndarray) -> int:
    return int(np.count_nonzero(np.diff(np.signbit(x))))


def check_served(sig, fs: float = RATE):
    """The returned time range describes the matrices: n samples from sec[0], at fs."""
    tr = sig.time_range
    assert tr.fs == fs
    assert tr.n == tr.timestamp[1] - tr.timestamp[0]
    assert tr.timestamp[0] == round(tr.sec[0] * fs) and tr.timestamp[1] == round(tr.sec[1] * fs), tr
    for m in (sig.amp, sig.gpio_ain, sig.gpio_din, sig.gpio_dout):
        if m is not None:
            assert m.shape[1] == tr.n, (m.shape, tr)


def server_error(excinfo, code: str) -> str:
    """The error is a gRPC status the client maps to ServerCommunicationError with `code`;
    returns the message."""
    assert type(excinfo.value) is ServerCommunicationError, repr(excinfo.value)
    msg = str(excinfo.value)
    assert f"StatusCode.{code}" in msg, msg
    return msg


def ntv(meta, sig_type) -> list[int]:
    return list(meta.selected_sig_map[sig_type].ntv)


# --------------------------------------------------------------------------------------------
# status, health, version


def test_healthcheck_answers_on_all_five_services_and_version_is_5_7_0(client):
    for service in (
        ServiceEndpoint.ALLEGO_LIFECYCLE,
        ServiceEndpoint.ALLEGO_CORE,
        ServiceEndpoint.ALLEGO_PCACHE,
        ServiceEndpoint.ALLEGO_KPI,
        ServiceEndpoint.ALLEGO_NEURONS,
    ):
        assert client.healthcheck(service) is None
    assert client.server_version == (5, 7, 0)


def test_idle_status_reports_port_a_gpio_counts_and_no_cache(client):
    s = client.get_status()
    assert s.streaming.stream_mode == StreamMode.OFF
    r = s.streaming.primary_cache_t_range
    assert r == [] or (len(r) == 2 and r[1] <= r[0]), f"an idle daemon reports a cache range {r}"
    assert s.recording.record_mode == RecordMode.OFF
    assert (s.recording.active_filename, s.recording.duration, s.recording.error) == ("", 0.0, "")
    # 32 channels fit on port A (the simulated device has 128 channels per port): only A exists.
    assert s.recording.record_mode_port_a == RecordMode.OFF
    for p in "bcdefgh":
        assert getattr(s.recording, f"record_mode_port_{p}") is None, p
    assert [(p.port, p.channel_count) for p in s.ports] == [(Port.A, CHANNELS)]
    assert s.is_connected
    g = s.gpio_channel_count
    assert (g.n_aux, g.n_din, g.n_dout) == (N_AIN, N_DIN, N_DOUT)


def test_streaming_status_reports_a_growing_cache_range_in_stream_seconds(client):
    t0 = time.monotonic()
    client.start_streaming()
    r1 = wait_for_cache(client, 0.5)
    elapsed = time.monotonic() - t0
    s = client.get_status()
    assert s.streaming.stream_mode == StreamMode.ON
    # Stream seconds since streaming started: the cache (10 s) is not full yet, so it starts at 0,
    # and the simulated device is paced in real time.
    assert r1[0] == 0.0
    assert elapsed - 1.0 < r1[1] <= elapsed + 0.2, (r1, elapsed)
    assert 0.0 <= s.streaming.hardware_memory_level <= 1.0
    r2 = wait_for_cache(client, r1[1] + 0.2, timeout=5.0)
    assert r2[0] == 0.0, (r1, r2)

    # Stopping ends the stream; starting again starts stream time (and the cache) from 0.
    client.stop_streaming()
    s = client.get_status()
    assert s.streaming.stream_mode == StreamMode.OFF
    client.start_streaming()
    r3 = client.get_status().streaming.primary_cache_t_range
    assert r3 == [] or (r3[0] == 0.0 and r3[1] < r2[1]), (r2, r3)
    client.stop_streaming()


def test_recording_status_reports_port_a_on_the_active_file_and_its_duration(client, tmp_path):
    client.start_recording()
    s = client.get_status()
    assert s.recording.record_mode == RecordMode.ON
    assert s.recording.record_mode_port_a == RecordMode.ON
    for p in "bcdefgh":
        assert getattr(s.recording, f"record_mode_port_{p}") is None, p
    active = Path(s.recording.active_filename)
    assert active.parent == tmp_path / "recordings" and active.name.startswith("interop"), active
    assert s.recording.error == ""
    assert s.streaming.stream_mode == StreamMode.ON
    deadline = time.monotonic() + 5.0
    while (later := client.get_status().recording).duration < 0.4:
        assert time.monotonic() < deadline, f"duration still {later.duration}"
        time.sleep(0.05)
    assert later.active_filename == str(active) and later.record_mode_port_a == RecordMode.ON
    assert later.duration > s.recording.duration and later.error == ""
    client.stop_recording()
    s = client.get_status().recording
    assert (s.record_mode, s.record_mode_port_a, s.active_filename) == (RecordMode.OFF, RecordMode.OFF, "")
    assert active.exists()
    client.stop_streaming()


# --------------------------------------------------------------------------------------------
# channel metadata, probes, port scan


def test_channel_metadata_lists_amp_ain_din_dout_with_index_maps_names_and_units(client):
    m = client.get_channel_metadata()
    assert m.fs == RATE
    counts = {AMP: CHANNELS, AIN: N_AIN, DIN: N_DIN, DOUT: N_DOUT}
    assert m.num_channels == counts
    assert m.selected_num_channels == counts, "every channel is selected at start"
    assert m.signal_units == {
        AMP: SignalUnits.MICROVOLTS,
        AIN: SignalUnits.VOLTS,
        DIN: SignalUnits.BINARY,
        DOUT: SignalUnits.BINARY,
    }
    for st, n in counts.items():
        k = m.sig_map[st]
        assert k.ntv == list(range(n)) and k.dset == list(range(n)), st
        assert m.selected_sig_map[st] == k, st
        assert m.color_group_idxs[st] == [COLOR_GROUP_UNSET] * n, st
    # System indices run across the types: AMP first, then AIN, DIN, DOUT, each once.
    sys = [i for st in (AMP, AIN, DIN, DOUT) for i in m.sig_map[st].sys]
    assert sys == list(range(CHANNELS + N_AIN + N_DIN + N_DOUT))
    assert m.chan_names[AMP] == [f"A-{k:03d}" for k in range(CHANNELS)]
    assert m.chan_names[AIN] == [f"AIN-{k:02d}" for k in range(N_AIN)]
    assert m.chan_names[DIN] == [f"DIN-{k:02d}" for k in range(N_DIN)]
    assert m.chan_names[DOUT] == [f"DOUT-{k:02d}" for k in range(N_DOUT)]
    for st in (AIN, DIN, DOUT):
        assert m.ports[st] == [None] * counts[st] and m.site_nums[st] == [SITE_NUM_UNSET] * counts[st], st
    info = m.get_channel_info(3, AIN)
    assert (info.sys_idx, info.name, info.port, info.has_position) == (CHANNELS + 3, "AIN-03", None, False)


def test_simulated_probe_is_one_straight_shank_at_25_um_pitch(client):
    m = client.get_channel_metadata()
    assert len(m.site_positions) == CHANNELS
    radius = math.sqrt(177.0 / math.pi)
    for k, sp in enumerate(m.site_positions):
        assert (sp.probe_x, sp.probe_y, sp.probe_z) == (0.0, 25.0 * k, 0.0), (k, sp)
        assert sp.site_shape == "circle" and sp.site_area_um2 == pytest.approx(177.0), (k, sp)
        assert sp.bounding_box_center == pytest.approx((0.0, 25.0 * k, 0.0)), (k, sp)
        assert sp.site_lim_x_max - sp.site_lim_x_min == pytest.approx(2 * radius), (k, sp)
    ids = m.probe_ids[AMP]
    assert ids[0] != "" and ids == [ids[0]] * CHANNELS
    assert m.ports[AMP] == [Port.A] * CHANNELS and m.probe_idxs[AMP] == [0] * CHANNELS
    sites = m.site_nums[AMP]
    assert len(set(sites)) == CHANNELS and min(sites) >= 1


@pytest.mark.parametrize("probe", ["neuronexus-a1x32-6mm-50-177", "neuronexus-a4x8-5mm-200-400-177"])
def test_built_in_probe_map_sets_positions_sites_and_probe_id_from_its_file(start_daemon, probe):
    spec = tomllib.loads((REPO / "probes" / f"{probe}.toml").read_text())
    start_daemon(EPHYSD_PROBES__PORT_A=probe)
    with AllegoClient() as client:
        m = client.get_channel_metadata()
    amp = m.sig_map[AMP].ntv
    assert len(spec["sites"]) == CHANNELS
    for site in spec["sites"]:
        i = amp.index(site["channel"])
        sp = m.site_positions[i]
        where = (probe, site)
        assert (sp.probe_x, sp.probe_y) == pytest.approx((site["x_um"], site["y_um"])), (where, sp)
        assert sp.site_area_um2 == pytest.approx(site.get("area_um2", spec["site_area_um2"])), where
        assert sp.site_shape == site.get("shape", spec["site_shape"]), where
        assert m.site_nums[AMP][i] == site["site"], where
        assert m.ports[AMP][i] == Port.A and m.probe_idxs[AMP][i] == 0, where
    assert m.probe_ids[AMP] == [spec["name"]] * CHANNELS


def test_probe_map_shorter_than_the_port_leaves_the_other_channels_without_a_site(start_daemon):
    spec = tomllib.loads((REPO / "probes" / "neuronexus-a1x16-5mm-50-177.toml").read_text())
    start_daemon(EPHYSD_PROBES__PORT_A="neuronexus-a1x16-5mm-50-177")
    with AllegoClient() as client:
        m = client.get_channel_metadata()
    covered = {s["channel"]: s for s in spec["sites"]}
    assert len(covered) == 16
    for i, ch in enumerate(m.sig_map[AMP].ntv):
        if ch in covered:
            assert m.site_nums[AMP][i] == covered[ch]["site"], ch
            assert m.site_positions[i].probe_y == pytest.approx(covered[ch]["y_um"]), ch
            assert m.ports[AMP][i] == Port.A, ch
        else:
            assert (m.site_nums[AMP][i], m.ports[AMP][i], m.probe_idxs[AMP][i]) == (SITE_NUM_UNSET, None, None), ch


def test_probe_none_reports_channels_without_a_probe(start_daemon):
    start_daemon(EPHYSD_PROBES__PORT_A="none")
    with AllegoClient() as client:
        m = client.get_channel_metadata()
        assert client.get_status().ports[0].channel_count == CHANNELS
    assert m.num_channels[AMP] == CHANNELS
    assert m.ports[AMP] == [None] * CHANNELS
    assert m.probe_idxs[AMP] == [None] * CHANNELS
    assert m.site_nums[AMP] == [SITE_NUM_UNSET] * CHANNELS
    assert m.probe_ids[AMP] == [""] * CHANNELS


def test_unknown_probe_map_stops_the_daemon_naming_the_key_and_the_built_in_maps(start_daemon):
    with pytest.raises(RuntimeError) as err:
        start_daemon(EPHYSD_PROBES__PORT_A="neuronexus-a1x99")
    msg = str(err.value)
    assert "probes.port_a" in msg and "neuronexus-a1x99" in msg, msg
    assert "neuronexus-a1x32-6mm-50-177" in msg, msg


def test_scan_ports_returns_metadata_when_idle_and_is_refused_while_streaming(client):
    m = client.scan_ports()
    assert m.num_channels == {AMP: CHANNELS, AIN: N_AIN, DIN: N_DIN, DOUT: N_DOUT}
    assert m.sig_map[AMP].ntv == list(range(CHANNELS))
    assert m.ports[AMP] == [Port.A] * CHANNELS
    client.start_streaming()
    with pytest.raises(RadiensError) as err:
        client.scan_ports()
    msg = server_error(err, "FAILED_PRECONDITION")
    assert "streaming is on" in msg and "stop streaming" in msg, msg
    assert client.get_status().streaming.stream_mode == StreamMode.ON
    client.stop_streaming()
    assert client.scan_ports().num_channels[AMP] == CHANNELS


# --------------------------------------------------------------------------------------------
# selection and colour groups


def test_set_selected_channels_replaces_only_the_named_types(client):
    m = client.set_selected_channels([3, 1, 2])
    assert ntv(m, AMP) == [1, 2, 3]
    assert m.selected_sig_map[AMP].sys == [1, 2, 3] and m.selected_num_channels[AMP] == 3
    assert ntv(m, AIN) == list(range(N_AIN)), "a bare list touches AMP only"

    m = client.set_selected_channels({"ain": [0, 2], "din": [], "dout": "all"})
    assert ntv(m, AMP) == [1, 2, 3]
    assert ntv(m, AIN) == [0, 2] and m.selected_sig_map[AIN].sys == [CHANNELS, CHANNELS + 2]
    assert ntv(m, DIN) == [] and m.selected_num_channels[DIN] == 0
    assert ntv(m, DOUT) == list(range(N_DOUT))

    m = client.set_selected_channels("all")
    assert ntv(m, AMP) == list(range(CHANNELS))
    assert ntv(m, AIN) == [0, 2] and ntv(m, DIN) == []
    assert client.get_channel_metadata().selected_sig_map == m.selected_sig_map


def test_select_and_deselect_add_and_remove_within_each_type(client):
    client.set_selected_channels({"amp": [1, 2, 3], "ain": [0, 2], "din": []})
    m = client.select_channels({"amp": [10, 0], "din": [5]})
    assert ntv(m, AMP) == [0, 1, 2, 3, 10]
    assert ntv(m, DIN) == [5] and m.selected_sig_map[DIN].sys == [CHANNELS + N_AIN + 5]
    assert ntv(m, AIN) == [0, 2]
    m = client.deselect_channels({"amp": [1], "dout": [0, 15]})
    assert ntv(m, AMP) == [0, 2, 3, 10]
    assert ntv(m, DOUT) == list(range(1, 15))
    # Already in that state: no change, no error.
    m = client.select_channels([0])
    assert ntv(m, AMP) == [0, 2, 3, 10]
    m = client.deselect_channels({"amp": [1], "din": [6]})
    assert ntv(m, AMP) == [0, 2, 3, 10] and ntv(m, DIN) == [5]
    m = client.deselect_channels({"ain": "all"})
    assert ntv(m, AIN) == []
    assert client.get_channel_metadata().selected_sig_map == m.selected_sig_map


def test_channel_groups_take_the_next_free_index_per_group_and_type(client):
    m = client.set_channel_groups([{"amp": [0, 2]}, {"amp": [3], "ain": [0]}, {"amp": [10]}])
    amp = m.color_group_idxs[AMP]
    assert (amp[0], amp[2], amp[3], amp[10]) == (1, 1, 2, 4)
    assert [g for k, g in enumerate(amp) if k not in (0, 2, 3, 10)] == [COLOR_GROUP_UNSET] * (CHANNELS - 4)
    assert m.color_group_idxs[AIN] == [3] + [COLOR_GROUP_UNSET] * (N_AIN - 1)
    assert set(m.color_group_idxs[DIN]) == set(m.color_group_idxs[DOUT]) == {COLOR_GROUP_UNSET}

    # A new set replaces the old one; a group matching no channels gets no index.
    m = client.set_channel_groups([{"din": [1]}, {"amp": [5, 6]}, {"dout": [], "ain": [7]}])
    assert {k for k, g in enumerate(m.color_group_idxs[AMP]) if g != COLOR_GROUP_UNSET} == {5, 6}
    assert m.color_group_idxs[AMP][5] == m.color_group_idxs[AMP][6] == 2
    assert m.color_group_idxs[DIN][1] == 1
    assert m.color_group_idxs[AIN] == [COLOR_GROUP_UNSET] * 7 + [3]
    assert set(m.color_group_idxs[DOUT]) == {COLOR_GROUP_UNSET}
    assert client.get_channel_metadata().color_group_idxs == m.color_group_idxs

    m = client.set_channel_groups([])
    for st in (AMP, AIN, DIN, DOUT):
        assert set(m.color_group_idxs[st]) == {COLOR_GROUP_UNSET}, st


# --------------------------------------------------------------------------------------------
# get_signals: values


def test_sine_amp_channel_0_is_a_1_khz_100_uv_sine(sine_client):
    stream(sine_client, 1.0)
    sig = sine_client.get_signals(TimeRangeSpec.lookback(1.0))
    check_served(sig)
    assert sig.amp.shape == (CHANNELS, 30_000)
    assert sig.gpio_ain is None and sig.gpio_din is None and sig.gpio_dout is None
    ch0 = sig.amp[0]
    assert abs(peak_hz(ch0, RATE) - 1000.0) <= 2.0
    assert 95.0 <= np.abs(ch0).max() <= 110.0, np.abs(ch0).max()
    assert abs(zero_crossings(ch0) - 2000) <= 20, zero_crossings(ch0)
    assert ch0.std() == pytest.approx(100 / math.sqrt(2), rel=0.05)


def test_sine_channels_cycle_through_the_test_frequencies(sine_client):
    stream(sine_client, 1.0)
    sig = sine_client.get_signals([0.0, 1.0])
    assert sig.amp.shape == (CHANNELS, 30_000)
    peaks = [peak_hz(sig.amp[k], RATE) for k in range(CHANNELS)]
    expected = [SINE_TARGETS_HZ[k % 8] for k in range(CHANNELS)]
    assert np.allclose(peaks, expected, atol=2.0), list(zip(peaks, expected))
    assert np.all(np.abs(sig.amp).max(axis=1) < 110.0)


def test_gpio_signals_come_in_volts_and_logic_levels(sine_client):
    stream(sine_client, 1.0)
    sig = sine_client.get_signals(TimeRangeSpec.lookback(1.0), {"amp": [], "ain": "all", "din": "all", "dout": "all"})
    check_served(sig)
    assert sig.amp is None
    ain, din, dout = sig.gpio_ain, sig.gpio_din, sig.gpio_dout
    assert (ain.shape, din.shape, dout.shape) == ((N_AIN, 30_000), (N_DIN, 30_000), (N_DOUT, 30_000))
    # Analog in 0: a 1 Hz sine of ±2 V (in volts, not codes or mV).
    assert 1.9 <= ain[0].max() <= 2.05 and -2.05 <= ain[0].min() <= -1.9, (ain[0].min(), ain[0].max())
    assert peak_hz(ain[0], RATE) == 1.0
    assert power_below(ain[0], RATE, 1.5) > 0.98
    assert np.all(np.abs(ain[1:]) < 1e-3), "analog inputs 1..7 are at 0 V"
    # Digital in 0: 10 ms high once a second, as 0/1.
    assert set(np.unique(din)) <= {0.0, 1.0}
    assert 290 <= din[0].sum() <= 310, din[0].sum()
    assert np.count_nonzero(np.diff(din[0]) > 0) <= 1, "one pulse per second"
    assert din[1:].sum() == 0 and dout.sum() == 0


# --------------------------------------------------------------------------------------------
# get_signals: time ranges


def test_lookback_serves_the_newest_samples(sine_client):
    stream(sine_client, 1.5)
    before = sine_client.get_status().streaming.primary_cache_t_range
    sig = sine_client.get_signals(TimeRangeSpec.lookback(0.5), [0, 1])
    after = sine_client.get_status().streaming.primary_cache_t_range
    check_served(sig)
    assert sig.amp.shape == (2, 15_000)
    assert sig.time_range.dur_sec == pytest.approx(0.5)
    assert before[1] - 1e-6 <= sig.time_range.sec[1] <= after[1] + 1e-6, (before, sig.time_range, after)
    assert sig.time_range.walltime_str.endswith("Z") or "+00:00" in sig.time_range.walltime_str

    # The list form [d, nan] is the same request.
    sig2 = sine_client.get_signals([0.25, math.nan], [0])
    check_served(sig2)
    assert sig2.amp.shape == (1, 7_500) and sig2.time_range.sec[1] >= sig.time_range.sec[1]

    # Reading the served range back as an absolute range gives the same samples.
    again = sine_client.get_signals(list(sig.time_range.sec), [0, 1])
    assert again.time_range.sec == pytest.approx(sig.time_range.sec)
    np.testing.assert_array_equal(again.amp, sig.amp)


def test_absolute_ranges_serve_exactly_the_frames_asked_for(sine_client):
    stream(sine_client, 1.2)
    sig = sine_client.get_signals([0.5, 1.0], [0, 1])
    check_served(sig)
    assert sig.time_range.sec == pytest.approx((0.5, 1.0))
    assert sig.time_range.timestamp == (15_000, 30_000)
    assert sig.amp.shape == (2, 15_000)
    tail = sine_client.get_signals([0.75, 1.0], [0, 1])
    assert tail.time_range.timestamp == (22_500, 30_000)
    np.testing.assert_array_equal(tail.amp, sig.amp[:, 7_500:])
    third = sine_client.get_signals([1 / 3, 2 / 3], [0])
    assert third.time_range.timestamp == (10_000, 20_000) and third.amp.shape == (1, 10_000)


def test_open_and_overlong_ranges_are_clipped_to_the_cache(sine_client):
    stream(sine_client, 1.5)
    head_before = sine_client.get_status().streaming.primary_cache_t_range[1]

    start = sine_client.get_signals([-math.inf, 0.5], [0])
    check_served(start)
    assert start.time_range.sec == pytest.approx((0.0, 0.5)) and start.amp.shape == (1, 15_000)

    to_head = sine_client.get_signals([1.0, math.inf], [0])
    check_served(to_head)
    assert to_head.time_range.sec[0] == pytest.approx(1.0)
    assert to_head.time_range.sec[1] >= head_before - 1e-6

    everything = sine_client.get_signals(TimeRangeSpec.full(), [0])
    check_served(everything)
    assert everything.time_range.sec[0] == 0.0 and everything.time_range.sec[1] >= to_head.time_range.sec[1]

    past_head = sine_client.get_signals([1.2, 1000.0], [0])
    head_after = sine_client.get_status().streaming.primary_cache_t_range[1]
    check_served(past_head)
    assert past_head.time_range.sec[0] == pytest.approx(1.2)
    assert head_before - 1e-6 <= past_head.time_range.sec[1] <= head_after + 1e-6
    np.testing.assert_array_equal(past_head.amp[0, :1000], to_head.amp[0, 6000:7000])


def test_aged_out_samples_are_clipped_and_a_range_wholly_aged_out_is_out_of_range(start_daemon):
    start_daemon(EPHYSD_DEVICE__BACKBONE="sim-sine", EPHYSD_CACHE__SECONDS="1")
    with AllegoClient() as client:
        client.start_streaming()
        r = wait_for_cache(client, 0.99, oldest_after=0.6)
        assert r[1] - r[0] <= 1.0 + 1e-6, f"a 1 s cache holds {r}"
        assert client.get_status().streaming.hardware_memory_level == pytest.approx(1.0, abs=0.05)

        end = r[0] + 0.3
        sig = client.get_signals([0.0, end], [0])
        check_served(sig)
        assert r[0] - 1e-6 <= sig.time_range.sec[0] < end - 0.05, (r, sig.time_range)
        assert sig.time_range.sec[1] == pytest.approx(end)

        with pytest.raises(TimeRangeError) as err:
            client.get_signals([0.0, 0.2], [0])
        msg = str(err.value)
        assert "[0, 0.2) s is not in the primary cache" in msg and "which holds [" in msg, msg
        client.stop_streaming()


def test_rows_follow_the_request_order_including_duplicates(sine_client):
    stream(sine_client, 0.6)
    rng = [0.1, 0.5]
    every = sine_client.get_signals(rng, ALL_TYPES)
    assert every.amp.shape == (CHANNELS, 12_000) and every.gpio_ain.shape == (N_AIN, 12_000)

    sig = sine_client.get_signals(rng, [5, 0, 5, 31])
    np.testing.assert_array_equal(sig.amp, every.amp[[5, 0, 5, 31]])
    sig = sine_client.get_signals(rng, {"amp": [7, 1], "ain": [1, 0], "din": [3, 0], "dout": [2]})
    np.testing.assert_array_equal(sig.amp, every.amp[[7, 1]])
    np.testing.assert_array_equal(sig.gpio_ain, every.gpio_ain[[1, 0]])
    np.testing.assert_array_equal(sig.gpio_din, every.gpio_din[[3, 0]])
    np.testing.assert_array_equal(sig.gpio_dout, every.gpio_dout[[2]])
    assert sig.gpio_ain[1].max() > 1.0, "row 1 is analog input 0, the ±2 V sine"


def test_selected_spec_reads_the_selected_channels(sine_client):
    stream(sine_client, 0.6)
    sine_client.set_selected_channels({"amp": [10, 2, 0, 3], "ain": [1, 0], "din": [0], "dout": [3]})
    rng = [0.1, 0.4]
    every = sine_client.get_signals(rng, ALL_TYPES)
    sel = sine_client.get_signals(rng, SELECTED_TYPES)
    np.testing.assert_array_equal(sel.amp, every.amp[[0, 2, 3, 10]])
    np.testing.assert_array_equal(sel.gpio_ain, every.gpio_ain[[0, 1]])
    np.testing.assert_array_equal(sel.gpio_din, every.gpio_din[[0]])
    np.testing.assert_array_equal(sel.gpio_dout, every.gpio_dout[[3]])
    # signals=None still means every AMP channel, selected or not.
    assert sine_client.get_signals(rng).amp.shape == (CHANNELS, 9_000)
    # Only the types asked for come back.
    only_amp = sine_client.get_signals(rng, {"amp": "selected"})
    assert only_amp.amp.shape == (4, 9_000) and only_amp.gpio_ain is None


def test_an_empty_selection_returns_no_matrices(sine_client):
    stream(sine_client, 0.3)
    sig = sine_client.get_signals(TimeRangeSpec.lookback(0.2), {"amp": []})
    assert sig.amp is None and sig.gpio_ain is None and sig.gpio_din is None and sig.gpio_dout is None


def test_get_signals_equals_the_recording_of_the_same_period(client):
    client.start_streaming()
    wait_for_cache(client, 0.4)
    client.start_recording()
    active = Path(client.get_status().recording.active_filename)
    deadline = time.monotonic() + 10
    while client.get_status().recording.duration < 1.3:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    client.stop_recording()
    with h5py.File(active, "r") as f:
        ts0 = int(f.attrs["start_timestamp"])
        fs = float(f.attrs["frames_per_second"])
        assert ts0 > 0.3 * fs, "the recording started 0.4 s into the stream"
        amp = f["samples"][: int(fs)].T.astype(np.float64) * f.attrs["uV_per_sample_unit"]
        ain = (f["analog_in"][: int(fs)].T.astype(np.float64) - 32768) * AIN_VOLTS_PER_CODE
        din_words = f["digital_in"][: int(fs)].astype(np.int64)
        dout_words = f["digital_out"][: int(fs)].astype(np.int64)
    sig = client.get_signals([ts0 / fs, ts0 / fs + 1.0], ALL_TYPES)
    client.stop_streaming()
    assert sig.time_range.timestamp == (ts0, ts0 + int(fs))
    np.testing.assert_allclose(sig.amp, amp, atol=1e-3)
    np.testing.assert_allclose(sig.gpio_ain, ain, atol=1e-6)
    np.testing.assert_array_equal(sig.gpio_din, [(din_words >> k) & 1 for k in range(N_DIN)])
    np.testing.assert_array_equal(sig.gpio_dout, [(dout_words >> k) & 1 for k in range(N_DOUT)])
    assert sig.amp.std() > 5, "a live signal, not zeros"


# --------------------------------------------------------------------------------------------
# get_signals: errors


def test_a_range_outside_the_cache_raises_time_range_error_naming_the_cache(sine_client):
    stream(sine_client, 0.3)
    with pytest.raises(TimeRangeError) as err:
        sine_client.get_signals([1000.0, 1001.0], [0])
    msg = str(err.value)
    assert "Requested time range is not available" in msg
    assert "[1000, 1001) s is not in the primary cache, which holds [0.000000, " in msg, msg


@pytest.mark.parametrize(
    ("time_range", "shown"),
    [([0.0, math.nan], "= 0"), ([-2.0, math.nan], "= -2"), ([math.nan, math.nan], "= NaN")],
)
def test_an_invalid_lookback_is_refused_naming_the_field(sine_client, time_range, shown):
    stream(sine_client, 0.3)
    with pytest.raises(RadiensError) as err:
        sine_client.get_signals(time_range, [0])
    msg = server_error(err, "INVALID_ARGUMENT")
    assert f"tR.timeRangeSec[0] {shown}" in msg, msg
    assert "lookback duration" in msg and "finite number of seconds > 0" in msg, msg


def test_a_nan_range_start_is_refused_naming_the_field(sine_client):
    stream(sine_client, 0.3)
    with pytest.raises(RadiensError) as err:
        sine_client.get_signals([math.nan, 5.0], [0])
    msg = server_error(err, "INVALID_ARGUMENT")
    assert "tR.timeRangeSec[0] = NaN" in msg and "±inf for an open end" in msg, msg


def test_get_signals_without_a_stream_says_streaming_is_off(client):
    for rng in (TimeRangeSpec.lookback(0.5), [0.0, 1.0]):
        with pytest.raises(RadiensError) as err:
            client.get_signals(rng, [0])
        msg = server_error(err, "FAILED_PRECONDITION")
        assert "streaming is off" in msg and "start streaming" in msg, msg
    # Also once a stream has come and gone: its cache is not served.
    stream(client, 0.3)
    client.stop_streaming()
    with pytest.raises(RadiensError) as err:
        client.get_signals([0.0, 0.2], [0])
    assert "streaming is off" in server_error(err, "FAILED_PRECONDITION")


def test_core_config_reports_rate_mode_loop_and_automatic_cable_delay(client):
    cfg = client.get_core_config()
    assert cfg.base_samp_freq == RATE
    assert cfg.backbone_mode == BackboneMode.SMARTBOX_SIM_GEN_SPIKES
    assert cfg.allego_core_server_port.endswith(":50051")
    assert cfg.stream_loop_dur_ms > 0
    assert cfg.has_xdaq_gpio_expander is False
    assert cfg.cable_delays == {Port.A.value: CableDelay(port=Port.A, cable_delay=0, is_auto=True)}


def test_sample_rate_change_while_idle_applies_to_config_metadata_and_signals(sine_client):
    sine_client.update_core_config(samp_freq=20_000)
    assert sine_client.get_core_config().base_samp_freq == 20_000.0
    assert sine_client.get_channel_metadata().fs == 20_000.0
    r = stream(sine_client, 1.0)
    assert r[1] < 5.0, f"cache range {r} is not in seconds at 20 kHz"
    sig = sine_client.get_signals(TimeRangeSpec.lookback(1.0), [0, 1])
    check_served(sig, fs=20_000.0)
    assert sig.amp.shape == (2, 20_000)
    assert sig.time_range.dur_sec == pytest.approx(1.0)
    assert abs(peak_hz(sig.amp[0], 20_000.0) - 1000.0) <= 2.0
    assert abs(peak_hz(sig.amp[1], 20_000.0) - 500.0) <= 2.0
    sine_client.stop_streaming()

    sine_client.update_core_config(samp_freq=30_000)
    assert sine_client.get_core_config().base_samp_freq == RATE
    assert sine_client.get_channel_metadata().fs == RATE


def test_core_config_changes_are_refused_while_streaming(client):
    client.start_streaming()
    for change in ({"samp_freq": 20_000}, {"cable_delay": CableDelay(port=Port.A, cable_delay=3, is_auto=False)}):
        with pytest.raises(RadiensError) as err:
            client.update_core_config(**change)
        msg = server_error(err, "FAILED_PRECONDITION")
        assert "streaming is on" in msg and "stop streaming" in msg, msg
    cfg = client.get_core_config()
    assert cfg.base_samp_freq == RATE and cfg.cable_delays[Port.A.value].is_auto
    assert client.get_status().streaming.stream_mode == StreamMode.ON
    client.stop_streaming()


@pytest.mark.parametrize("rate", [44_100, 30_001, 0, -1, math.nan])
def test_an_unsupported_sample_rate_is_refused_naming_the_allowed_rates(client, rate):
    with pytest.raises(RadiensError) as err:
        client.update_core_config(samp_freq=rate)
    msg = server_error(err, "INVALID_ARGUMENT")
    assert "sampFreq = " in msg and "allowed" in msg, msg
    for allowed in ("1000", "20000", "25000", "30000"):
        assert allowed in msg, msg
    assert client.get_core_config().base_samp_freq == RATE


def test_a_manual_cable_delay_is_reported_back_and_bad_ones_are_refused(client):
    client.update_core_config(cable_delay=CableDelay(port=Port.A, cable_delay=3, is_auto=False))
    manual = {Port.A.value: CableDelay(port=Port.A, cable_delay=3, is_auto=False)}
    assert client.get_core_config().cable_delays == manual

    for delay in (16, -1):
        with pytest.raises(RadiensError) as err:
            client.update_core_config(cable_delay=CableDelay(port=Port.A, cable_delay=delay, is_auto=False))
        msg = server_error(err, "INVALID_ARGUMENT")
        assert "cableDelay.cableDelay" in msg and "0..=15" in msg and "isAuto" in msg, msg
    with pytest.raises(RadiensError) as err:
        client.update_core_config(cable_delay=CableDelay(port=Port.B, cable_delay=3, is_auto=False))
    msg = server_error(err, "INVALID_ARGUMENT")
    assert "cableDelay.port" in msg and "B" in msg and "a port of this device: A" in msg, msg
    assert client.get_core_config().cable_delays == manual

    client.update_core_config(cable_delay=CableDelay(port=Port.A, cable_delay=0, is_auto=True))
    assert client.get_core_config().cable_delays[Port.A.value].is_auto


def test_an_empty_update_and_the_ignored_fields_change_nothing(client):
    before = client.get_core_config()
    client.update_core_config()
    client.update_core_config(loop_dur=10.0, pcache_persistence=5.0)
    assert client.get_core_config() == before


# --------------------------------------------------------------------------------------------
# restart


def test_restart_into_each_simulated_mode_reports_it_and_changes_the_signals(client):
    client.update_core_config(cable_delay=CableDelay(port=Port.A, cable_delay=5, is_auto=False))
    std = {}
    for mode, label in (
        (BackboneMode.SMARTBOX_SIM_GEN_SINE, "sim-sine"),
        (BackboneMode.SMARTBOX_SIM_GEN_LFP, "sim-lfp"),
        (BackboneMode.SMARTBOX_SIM_GEN_BROADBAND, "sim-broadband"),
        (BackboneMode.SMARTBOX_SIM_GEN_SPIKES, "sim-spikes"),
    ):
        client.restart(mode=mode)
        cfg = client.get_core_config()
        assert cfg.backbone_mode == mode
        # A restart puts the cable delays back to their default.
        assert cfg.cable_delays == {Port.A.value: CableDelay(port=Port.A, cable_delay=0, is_auto=True)}, mode
        meta = client.get_channel_metadata()
        assert label in meta.source_label and meta.num_channels[AMP] == CHANNELS, (mode, meta.source_label)
        assert client.get_status().is_connected

        stream(client, 1.0)
        amp = client.get_signals([0.0, 1.0]).amp
        client.stop_streaming()
        assert amp.shape == (CHANNELS, 30_000)
        std[mode] = float(amp.std(axis=1).mean())
        if mode == BackboneMode.SMARTBOX_SIM_GEN_SINE:
            assert abs(peak_hz(amp[0], RATE) - 1000.0) <= 2.0
            assert abs(zero_crossings(amp[0]) - 2000) <= 20
        else:
            # Recording-like content: dominated by slow (LFP) power, no 1 kHz test tone.
            assert power_below(amp[0], RATE, 100.0) > 0.8, mode
            assert peak_hz(amp[0], RATE) < 100.0, mode
    assert std[BackboneMode.SMARTBOX_SIM_GEN_LFP] > 2 * std[BackboneMode.SMARTBOX_SIM_GEN_SPIKES], std
    assert std[BackboneMode.SMARTBOX_SIM_GEN_BROADBAND] > std[BackboneMode.SMARTBOX_SIM_GEN_SPIKES], std


def test_restart_is_refused_while_streaming(client):
    client.start_streaming()
    with pytest.raises(RadiensError) as err:
        client.restart(mode=BackboneMode.SMARTBOX_SIM_GEN_SINE)
    msg = server_error(err, "FAILED_PRECONDITION")
    assert "streaming is on" in msg and "stop streaming" in msg, msg
    assert client.get_core_config().backbone_mode == BackboneMode.SMARTBOX_SIM_GEN_SPIKES
    assert client.get_status().streaming.stream_mode == StreamMode.ON
    client.stop_streaming()


def test_restart_into_a_hardware_mode_fails_and_leaves_the_device_as_it_was(sine_client):
    delay = CableDelay(port=Port.A, cable_delay=5, is_auto=False)
    sine_client.update_core_config(cable_delay=delay)
    with pytest.raises(RadiensError) as err:
        sine_client.restart(mode=BackboneMode.XDAQ_ONE_REC)
    msg = server_error(err, "FAILED_PRECONDITION")
    assert "mode = XDAQ_ONE_REC" in msg and "xdaq-one-rec" in msg and "left as it was" in msg, msg
    for mode in ("smartbox_pro", "INTAN_USB2", BackboneMode.SMARTBOX_SIM_DATASOURCE):
        with pytest.raises(RadiensError) as err:
            sine_client.restart(mode=mode)
        assert "left as it was" in server_error(err, "FAILED_PRECONDITION")

    cfg = sine_client.get_core_config()
    assert cfg.backbone_mode == BackboneMode.SMARTBOX_SIM_GEN_SINE
    assert cfg.cable_delays == {Port.A.value: delay}
    status = sine_client.get_status()
    assert status.is_connected and [(p.port, p.channel_count) for p in status.ports] == [(Port.A, CHANNELS)]
    stream(sine_client, 0.5)
    amp = sine_client.get_signals(TimeRangeSpec.lookback(0.5), [0]).amp
    assert abs(peak_hz(amp[0], RATE) - 1000.0) <= 2.0
    sine_client.stop_streaming()
