"""Filters, spike detection, the live sorter and KPI metrics, driven through the real
radiens-core AllegoClient and checked against scipy and numpy on the same samples.

With `sim-sine`, AMP channel k carries a 100 µV sine at 1000, 500, 250, 100, 50, 20, 10, 4 Hz
(k mod 8) over a little noise; `sim-spikes` (the default) carries units over noise and LFP.
"""

from __future__ import annotations

import math
import time

import h5py
import numpy as np
import pytest
import scipy.signal
from radiens_core import AllegoClient
from radiens_core.exceptions import RadiensError
from radiens_core.models.dataset import TimeRangeSpec
from radiens_core.models.dsp import DSPParams, DSPType, FilterStage, FreqSpecBand
from radiens_core.models.kpi import KpiMetric
from radiens_core.models.spikesorter import SpikeDetectParams, SpikeSorterCommand, SpikeSorterStateSystem

RATE = 30_000.0
SORTER = "Live Signals"


def wait_until(check, timeout: float = 15.0, what: str = "condition"):
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


def cache_seconds(c: AllegoClient) -> float:
    r = c.get_status().streaming.primary_cache_t_range
    return r[1] - r[0] if len(r) == 2 else 0.0


def server_error(err) -> str:
    return str(err.value)


# --------------------------------------------------------------------------------------------
# filters


def test_dsp_groups_round_trip_and_bad_filters_are_named(client):
    group = client.get_dsp_group()
    assert group.hardware == [] and group.software_stage1 == [] and group.software_stage2 == []
    stage2 = [
        DSPParams(type=DSPType.NOTCH, stage=FilterStage.STAGE2, freq=60.0, notch_bandwidth=4.0, port="A", user_label="mains"),
        DSPParams(
            type=DSPType.BANDPASS,
            stage=FilterStage.STAGE2,
            freq_spec_band=FreqSpecBand(low_freq=300.0, high_freq=5000.0),
            filter_order=4,
            port="A",
        ),
        DSPParams(type=DSPType.CAR, stage=FilterStage.STAGE2, port="A"),
    ]
    client.set_dsp_group(stage=FilterStage.STAGE2, params=stage2)
    got = client.get_dsp_group().software_stage2
    assert [p.type for p in got] == [DSPType.NOTCH, DSPType.BANDPASS, DSPType.CAR]
    assert got[0].freq == 60.0 and got[0].notch_bandwidth == 4.0 and got[0].user_label == "mains"
    assert got[1].freq_spec_band == FreqSpecBand(low_freq=300.0, high_freq=5000.0) and got[1].filter_order == 4
    assert client.get_dsp_group().software_stage1 == []

    bad = [
        (DSPParams(type=DSPType.LOWPASS, stage=FilterStage.STAGE1, freq=20_000.0, port="A"), "Nyquist"),
        (DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE1, freq=300.0, filter_order=9, port="A"), "filterOrder = 9"),
        (DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE1, freq=300.0, port="C"), "port C"),
        (DSPParams(type=DSPType.VIRTUAL_REFERENCE, stage=FilterStage.STAGE1, ref_ntv_chan_idx=500, port="A"), "reference 500"),
    ]
    for params, expected in bad:
        with pytest.raises(RadiensError) as err:
            client.set_dsp_group(stage=FilterStage.STAGE1, params=[params])
        assert expected in server_error(err), server_error(err)
    assert client.get_dsp_group().software_stage1 == [], "a refused stage changes nothing"

    # Stage 1 is recorded: it cannot change under a recording; stage 2 can.
    client.start_streaming()
    client.start_recording()
    hp = DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE1, freq=1.0, port="A")
    with pytest.raises(RadiensError) as err:
        client.set_dsp_group(stage=FilterStage.STAGE1, params=[hp])
    assert "stage-1" in server_error(err) and "recording" in server_error(err)
    client.set_dsp_group(stage=FilterStage.STAGE2, params=[])
    client.stop_recording()
    client.set_dsp_group(stage=FilterStage.STAGE1, params=[hp])
    assert len(client.get_dsp_group().software_stage1) == 1
    client.stop_streaming()


def test_apply_dsp_returns_the_stage_two_signal_as_scipy_filters_it(sine_client):
    c = sine_client
    sos = scipy.signal.butter(4, 300.0, btype="highpass", output="sos", fs=RATE)
    c.set_dsp_group(
        stage=FilterStage.STAGE2,
        params=[DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE2, freq=300.0, filter_order=4, port="A")],
    )
    c.start_streaming()
    wait_until(lambda: cache_seconds(c) >= 2.5, what="2.5 s in the cache")
    newest = c.get_status().streaming.primary_cache_t_range[1]
    span = [newest - 2.0, newest - 0.5]
    raw = c.get_signals(span, [0, 3, 7])
    filtered = c.get_signals(span, [0, 3, 7], apply_dsp=True)
    c.stop_streaming()
    assert raw.time_range.timestamp == filtered.time_range.timestamp
    # scipy from zero state over the raw span; the filter's start-up has died out after 0.5 s
    # (the daemon's filter has run since the stream began). Both are stored in 0.195 µV units.
    expected = scipy.signal.sosfilt(sos, raw.amp.astype(np.float64), axis=1)
    settled = slice(int(0.5 * RATE), None)
    np.testing.assert_allclose(filtered.amp[:, settled], expected[:, settled], atol=0.2)
    # 1 kHz passes, 100 Hz is mostly gone, 4 Hz is gone.
    rms = np.sqrt(np.mean(filtered.amp[:, settled] ** 2, axis=1))
    assert rms[0] > 60 and rms[1] < 0.4 * rms[0] and rms[2] < 5, rms
    assert np.sqrt(np.mean(raw.amp[2] ** 2)) > 60, "the raw 4 Hz sine is still there"


def test_a_stage_two_filter_set_while_streaming_is_served_from_that_moment_on(sine_client):
    """With no stage-2 filter the filtered signal is the primary cache's own, sample for
    sample. A highpass set while streaming filters what follows, and the filtered cache
    starts where it took effect: a range reaching back before it is served from there on."""
    c = sine_client
    c.start_streaming()
    wait_until(lambda: cache_seconds(c) >= 1.5, what="1.5 s in the cache")
    newest = c.get_status().streaming.primary_cache_t_range[1]
    span = [newest - 1.0, newest]
    raw = c.get_signals(span, [0, 3, 7])
    unfiltered = c.get_signals(span, [0, 3, 7], apply_dsp=True)
    assert unfiltered.time_range.timestamp == raw.time_range.timestamp
    np.testing.assert_array_equal(unfiltered.amp, raw.amp)

    before_change = c.get_status().streaming.primary_cache_t_range[1]
    c.set_dsp_group(
        stage=FilterStage.STAGE2,
        params=[DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE2, freq=300.0, filter_order=4, port="A")],
    )
    after_change = c.get_status().streaming.primary_cache_t_range[1]
    wait_until(lambda: c.get_status().streaming.primary_cache_t_range[1] >= after_change + 1.5, what="1.5 s more")
    newest = c.get_status().streaming.primary_cache_t_range[1]
    filtered = c.get_signals([newest - 1.0, newest], [0, 3, 7], apply_dsp=True)
    rms = np.sqrt(np.mean(filtered.amp ** 2, axis=1))
    assert rms[0] > 60 and rms[2] < 5, rms
    reaching_back = c.get_signals([before_change - 1.0, newest], [0, 3, 7], apply_dsp=True)
    c.stop_streaming()
    start = reaching_back.time_range.timestamp[0]
    assert before_change * RATE <= start <= (after_change + 0.05) * RATE, (before_change, after_change, start)
    # All of it filtered: past the filter's first 10 ms the 4 Hz sine is gone.
    assert np.sqrt(np.mean(reaching_back.amp[2, int(0.01 * RATE) :] ** 2)) < 5


def test_analog_inputs_take_their_own_filters(sine_client):
    """Analog input 0 carries a 1 Hz, ±2 V sine: a 10 Hz highpass on it leaves ~1 % of it,
    as scipy computes on the raw input, while the amplifier channels are untouched."""
    c = sine_client
    sos = scipy.signal.butter(2, 10.0, btype="highpass", output="sos", fs=RATE)
    ain = DSPParams(type=DSPType.HIGHPASS, stage=FilterStage.STAGE2, freq=10.0, is_aux=True, aux_chan_idx=0, port="A")
    c.set_dsp_group(stage=FilterStage.STAGE2, params=[ain])
    got = c.get_dsp_group().software_stage2
    assert len(got) == 1 and got[0].is_aux and got[0].aux_chan_idx == 0
    with pytest.raises(RadiensError) as err:
        c.set_dsp_group(stage=FilterStage.STAGE2, params=[ain.model_copy(update={"aux_chan_idx": 99})])
    assert "auxChanIdx 99" in server_error(err), server_error(err)
    c.start_streaming()
    wait_until(lambda: cache_seconds(c) >= 3.0, what="3 s in the cache")
    newest = c.get_status().streaming.primary_cache_t_range[1]
    span = [newest - 2.5, newest - 0.2]
    spec = {"amp": [0], "ain": [0]}
    raw = c.get_signals(span, spec)
    filtered = c.get_signals(span, spec, apply_dsp=True)
    c.stop_streaming()
    expected = scipy.signal.sosfilt(sos, raw.gpio_ain[0].astype(np.float64))
    settled = slice(int(1.0 * RATE), None)
    np.testing.assert_allclose(filtered.gpio_ain[0][settled], expected[settled], atol=1e-3)
    assert np.abs(raw.gpio_ain[0]).max() > 1.5 and np.abs(filtered.gpio_ain[0][settled]).max() < 0.1
    np.testing.assert_allclose(filtered.amp, raw.amp, atol=0.1)


def test_apply_dsp_outside_the_filtered_cache_names_what_it_holds(sine_client):
    c = sine_client
    c.start_streaming()
    wait_until(lambda: cache_seconds(c) >= 0.5, what="0.5 s in the cache")
    with pytest.raises(RadiensError) as err:
        c.get_signals([1000.0, 1001.0], [0], apply_dsp=True)
    msg = server_error(err)
    assert "filtered" in msg and "holds" in msg, msg
    c.stop_streaming()


# --------------------------------------------------------------------------------------------
# detection and the sorter


def test_detect_params_round_trip_and_refusals_change_nothing(client):
    sid = client.get_default_spike_sorter_id()
    assert sid == SORTER
    params = client.get_detect_params(sid)
    assert sorted(params) == list(range(32))
    p0 = params[0]
    assert p0.is_set_thr == [True, False] and p0.thr_sd == [5.0, 5.0] and p0.is_enabled
    client.update_detect_params(sid, SpikeDetectParams(thr_sd=[6.0, 7.0], is_set_thr=[True, True], shadow=0.0015), [2, 3])
    after = client.get_detect_params(sid)
    assert after[2].thr_sd == [6.0, 7.0] and after[2].is_set_thr == [True, True] and after[2].shadow == 0.0015
    assert after[3] == after[2].model_copy(update={"ntv_chan_idx": 3})
    assert after[4] == params[4], "other channels untouched"
    client.update_detect_params(sid, SpikeDetectParams(thr=[-80.0, 90.0]), [5])
    assert client.get_detect_params(sid)[5].thr == [-80.0, 90.0]

    for bad, expected in [
        (SpikeDetectParams(thr=[80.0, 90.0]), "regFloat64[0]"),
        (SpikeDetectParams(shadow=float("nan")), "finite"),
        (SpikeDetectParams(thr_wdw=[0.001, 0.01]), "regFloat64[1]"),
    ]:
        with pytest.raises(RadiensError) as err:
            client.update_detect_params(sid, bad, [6])
        assert expected in server_error(err), server_error(err)
    with pytest.raises(RadiensError) as err:
        client.update_detect_params(sid, SpikeDetectParams(shadow=0.002), [1, 999])
    assert "ntvChanIdx 999" in server_error(err)
    assert client.get_detect_params(sid)[1] == params[1], "an update with a bad channel changes nothing"


def test_the_sorter_detects_switches_off_and_clears(client):
    sid = client.get_default_spike_sorter_id()
    assert client.get_spike_sorter_ids() == [SORTER]
    state = client.get_spike_sorter_state(sid)
    assert state.sys == SpikeSorterStateSystem.ON and state.is_on
    client.start_streaming()

    def processed():
        return client.get_spike_sorter_dashboard(sid).general.num_spikes_processed

    wait_until(lambda: processed() > 50, what="spikes detected")
    dash = client.get_spike_sorter_dashboard(sid)
    assert dash.general.num_total_sites == 32 and dash.general.num_active_sites > 0
    assert [p.name for p in dash.enabled_ports] == ["A"]

    client.spike_sorter_command(sid, SpikeSorterCommand.OFF)
    state = client.get_spike_sorter_state(sid)
    assert state.sys == SpikeSorterStateSystem.OFF and not state.is_on
    time.sleep(0.2)  # spikes already waiting for their snippet may still arrive
    frozen = processed()
    time.sleep(0.5)
    assert processed() == frozen, "no detection while off"

    client.spike_sorter_command(sid, SpikeSorterCommand.CLEAR_SORT)
    assert processed() == 0
    client.spike_sorter_command(sid, SpikeSorterCommand.ON)
    wait_until(lambda: processed() > 10, what="detection back on")
    client.stop_streaming()


def test_recorded_spikes_are_the_cl_layout(start_daemon):
    start_daemon(EPHYSD_RECORDING__RECORDING_TYPE="continuous_and_spikes")
    c = AllegoClient()
    try:
        c.start_streaming()
        c.start_recording()
        path = c.get_status().recording.active_filename
        wait_until(lambda: c.get_status().recording.duration >= 2.0, what="2 s recorded")
        c.stop_recording()
        c.stop_streaming()
    finally:
        c.close()
    with h5py.File(path, "r") as f:
        spikes = f["spikes"][:]
        frames = int(f.attrs["duration_frames"])
        truth = f["ground_truth"][:]
    assert len(spikes) > 20 and len(truth) > 20, (len(spikes), len(truth))
    assert spikes["samples"].shape[1] == 75
    assert np.all((spikes["timestamp"] >= 0) & (spikes["timestamp"] < frames))
    assert np.allclose(spikes["samples"].mean(axis=1), 0.0, atol=1e-3)
    # Most true spikes have a detection on their channel within 0.5 ms.
    found = sum(
        np.any((spikes["channel"] == t["channel"]) & (np.abs(spikes["timestamp"] - t["timestamp"]) <= 15))
        for t in truth[truth["timestamp"] > int(RATE)]
    )
    assert found >= 0.9 * np.sum(truth["timestamp"] > int(RATE)), found


# --------------------------------------------------------------------------------------------
# KPI


def test_kpi_metrics_equal_numpy_on_the_same_filtered_samples(client):
    """One packet per 2 s and no averaging (the 1 s window is shorter than the period): the
    metrics are those of the last packet, the 0.1 s of filtered signal ending where the
    reply's time range ends, read back through get_signals(apply_dsp=True)."""
    from radiens_core._generated import allegoserver_pb2_grpc, common_pb2

    stub = allegoserver_pb2_grpc.Kpi1Stub(client._pool.get_channel(client._kpi_address))
    stub.SetKpiUpdatePeriod(common_pb2.SetKpiParamRequest(param=2.0))
    stub.SetKpiPacketDur(common_pb2.SetKpiParamRequest(param=0.1))
    client.start_streaming()
    metrics = [KpiMetric.NUM_PTS, KpiMetric.MEAN, KpiMetric.MIN, KpiMetric.MAX, KpiMetric.MAX_ABS,
               KpiMetric.MAX_MIN_DIFF_ABS, KpiMetric.SD, KpiMetric.RMS]
    channels = [0, 5, 31]
    wait_until(lambda: client.get_kpi_status().num_packets >= 1, what="a KPI packet")
    # Read right after a packet, well inside the 2 s before the next.
    before = client.get_kpi_status().num_packets
    wait_until(lambda: client.get_kpi_status().num_packets > before, what="the next KPI packet")
    result = client.get_kpi_metrics(metrics, channels)
    end = result.time_range.timestamp[1]
    start = end - int(0.1 * RATE)
    sig = client.get_signals([start / RATE, end / RATE], channels, apply_dsp=True)
    client.stop_streaming()
    assert sig.time_range.timestamp == (start, end)
    x = sig.amp.astype(np.float64)
    expected = np.stack(
        [
            np.full(len(channels), x.shape[1]),
            x.mean(axis=1),
            x.min(axis=1),
            x.max(axis=1),
            np.abs(x).max(axis=1),
            x.max(axis=1) - x.min(axis=1),
            x.std(axis=1),
            np.sqrt((x**2).mean(axis=1)),
        ],
        axis=1,
    )
    assert result.values.shape == (3, len(metrics))
    np.testing.assert_allclose(result.values, expected, rtol=1e-4, atol=1e-3)
    status = client.get_kpi_status()
    assert math.isclose(status.packet_dur, 0.1) and math.isclose(status.update_period, 2.0)
