"""The filter module against scipy.signal: the same designs, section by section, and the same
output, through the f64 reference filter and through the real-time f32 filter stage.

Drives the `dsp_reference` example of the ephysd-pipeline crate (built here if missing):
`design` prints the sections, `filter` and `sosfilt` filter little-endian f64 samples from
stdin to stdout.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import numpy as np
import pytest
import scipy.signal as signal

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def dsp_reference() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    path = target / "debug" / "examples" / "dsp_reference"
    if not path.exists():
        subprocess.run(
            ["cargo", "build", "-q", "-p", "ephysd-pipeline", "--example", "dsp_reference"], cwd=REPO, check=True
        )
    return path


# (kind, family, order, frequencies, fs, ripple dB or None)
BUTTER = [
    (kind, "butter", order, freqs, fs, None)
    for fs in (25_000.0, 30_000.0)
    for kind, freqs in (
        ("lowpass", (250.0,)),
        ("highpass", (300.0,)),
        ("highpass", (1.0,)),
        ("bandpass", (300.0, 6000.0)),
        ("bandstop", (55.0, 65.0)),
    )
    for order in range(1, 9)
]
CHEBY1 = [
    (kind, "cheby1", order, freqs, 30_000.0, ripple)
    for ripple in (0.5, 1.0, 3.0)
    for kind, freqs in (
        ("lowpass", (3000.0,)),
        ("highpass", (300.0,)),
        ("bandpass", (300.0, 6000.0)),
        ("bandstop", (45.0, 55.0)),
    )
    for order in (1, 2, 3, 5, 8)
]
NOTCH = [
    ("notch", "butter", 2, (centre, bandwidth), fs, None)
    for fs in (25_000.0, 30_000.0)
    for centre in (50.0, 60.0)
    for bandwidth in (0.5, 1.0, 2.0, 5.0, 10.0)
]
CASES = BUTTER + CHEBY1 + NOTCH


def case_id(case) -> str:
    kind, family, order, freqs, fs, ripple = case
    name = f"{kind}-{family}{'' if ripple is None else f'{ripple}dB'}-{order}-{'-'.join(f'{f:g}' for f in freqs)}Hz"
    return f"{name}-fs{fs:g}"


def args(case) -> list[str]:
    kind, family, order, freqs, fs, ripple = case
    out = [kind, family, str(order), *(repr(f) for f in freqs), repr(fs)]
    if ripple is not None:
        out.append(repr(ripple))
    return out


def scipy_sos(case) -> np.ndarray:
    kind, family, order, freqs, fs, ripple = case
    if kind == "notch":
        centre, bandwidth = freqs
        b, a = signal.iirnotch(centre, centre / bandwidth, fs=fs)
        return np.concatenate([b, a])[np.newaxis, :]
    wn = freqs[0] if len(freqs) == 1 else list(freqs)
    if family == "butter":
        return signal.butter(order, wn, kind, output="sos", fs=fs)
    return signal.cheby1(order, ripple, wn, kind, output="sos", fs=fs)


def noisy_signal(fs: float, seconds: float = 1.0) -> np.ndarray:
    """Noise, a spike-band sine and mains, in µV."""
    rng = np.random.default_rng(20240611)
    t = np.arange(int(fs * seconds)) / fs
    return (
        30.0 * rng.standard_normal(t.size)
        + 80.0 * np.sin(2 * np.pi * 1000.0 * t)
        + 40.0 * np.sin(2 * np.pi * 60.0 * t + 0.3)
        + 20.0 * np.sin(2 * np.pi * 7.0 * t)
    )


def run(binary: Path, mode: str, case, x: np.ndarray | None = None) -> bytes:
    stdin = None if x is None else x.astype("<f8").tobytes()
    done = subprocess.run([str(binary), mode, *args(case)], input=stdin, capture_output=True, check=False)
    assert done.returncode == 0, done.stderr.decode()
    return done.stdout


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_design_matches_scipy_section_by_section(dsp_reference, case):
    lines = run(dsp_reference, "design", case).decode().splitlines()
    rows = np.array([[float(v) for v in line.split()] for line in lines])
    expected = scipy_sos(case)
    assert rows.shape == expected.shape
    # Same steps in the same order as scipy: only the last bits may differ. Coefficients that
    # are 0 in exact arithmetic (b1 of a bandpass section) are compared to the row's scale.
    scale = np.abs(expected).max(axis=1, keepdims=True)
    np.testing.assert_allclose(rows, expected, rtol=1e-9, atol=1e-13 * scale.max())
    assert np.all(np.abs(rows - expected) <= 1e-9 * np.abs(expected) + 1e-13 * scale)


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_f64_reference_filter_matches_scipy_sosfilt(dsp_reference, case):
    x = noisy_signal(case[4])
    y = np.frombuffer(run(dsp_reference, "sosfilt", case, x), dtype="<f8")
    expected = signal.sosfilt(scipy_sos(case), x)
    assert np.abs(y - expected).max() <= 1e-9 * np.sqrt(np.mean(x**2))


@pytest.mark.parametrize("case", CASES, ids=case_id)
def test_real_time_filter_stage_matches_scipy_sosfilt(dsp_reference, case):
    x = noisy_signal(case[4])
    y = np.frombuffer(run(dsp_reference, "filter", case, x), dtype="<f8")
    expected = signal.sosfilt(scipy_sos(case), x)
    # The real-time path runs in f32 (24-bit mantissa, 6e-8 relative rounding, on input that is
    # itself rounded to f32). Poles close to the unit circle (low cutoffs, narrow notches,
    # order-16 bandpasses) amplify that rounding a few hundred times; 1e-4 of the signal's rms
    # (here about 0.01 µV, a twentieth of the amplifier's 0.195 µV step) bounds it with margin.
    rms = np.sqrt(np.mean(x**2))
    error = np.abs(y - expected).max()
    assert error < 1e-4 * rms, f"max error {error:.3g} µV for rms {rms:.3g} µV"


def test_invalid_requests_are_refused_naming_the_field(dsp_reference):
    done = subprocess.run(
        [str(dsp_reference), "design", "highpass", "butter", "2", "20000", "30000"], capture_output=True, check=False
    )
    assert done.returncode == 2
    assert "cutoff_hz 20000 must be above 0 and below the Nyquist frequency 15000 Hz" in done.stderr.decode()
