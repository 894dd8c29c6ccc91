"""One second of 1024 channels, read the two ways a Python user would, in one run.

1. radiens-core's `AllegoClient.get_signals` of the last second from the running daemon
   (gRPC, channel-major float32 µV on the wire, float64 numpy in the user's hands);
2. h5py reading one second of the same daemon's recording (`/samples`, int16,
   frame-major) and numpy turning it into channel-major float32 µV.

Run by `cargo bench -p ephysd --bench allego` with the recording as the only argument; the
daemon is on the Allego ports. Prints one line per way (median and best of the runs, MB/s of
float32 µV delivered) and the ratio.
"""

from __future__ import annotations

import statistics
import sys
import time

import h5py
import numpy as np
from radiens_core import AllegoClient
from radiens_core.models import TimeRangeSpec

RUNS = 15


def timed(fn) -> list[float]:
    fn()  # warm: connections, page cache, imports
    out = []
    for _ in range(RUNS):
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


def report(name: str, seconds: list[float], nbytes: int) -> float:
    median = statistics.median(seconds)
    print(
        f"{name}: median {median * 1e3:.1f} ms, best {min(seconds) * 1e3:.1f} ms, "
        f"{nbytes / median / 1e6:.0f} MB/s over {len(seconds)} runs"
    )
    return median


def main(recording: str) -> None:
    client = AllegoClient()
    shape = {}

    def from_daemon():
        sig = client.get_signals(TimeRangeSpec.lookback(1.0))
        shape["grpc"] = sig.amp.shape

    with h5py.File(recording, "r") as f:
        samples = f["samples"]
        rate = float(f.attrs.get("frames_per_second", 30000.0))
        uv = float(samples.attrs.get("uV_per_sample_unit", f.attrs.get("uV_per_sample_unit", 0.195)))
        start = int(rate)  # the second after the first, well inside the file
        frames = int(rate)

        def from_file():
            block = samples[start : start + frames, :]
            out = np.ascontiguousarray(block.T, dtype=np.float32) * np.float32(uv)
            shape["h5py"] = out.shape

        grpc_s = timed(from_daemon)
        file_s = timed(from_file)
    channels = shape["h5py"][0]
    nbytes = channels * frames * 4
    assert shape["grpc"] == (channels, frames), shape
    a = report(f"radiens-core get_signals, last 1 s x {channels} ch", grpc_s, nbytes)
    b = report(f"h5py + numpy, 1 s x {channels} ch of the recording", file_s, nbytes)
    print(f"get_signals / h5py time ratio: {a / b:.2f}")
    client.close()


if __name__ == "__main__":
    main(sys.argv[1])
