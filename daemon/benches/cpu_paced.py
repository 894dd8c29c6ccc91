"""CPU the daemon uses when paced to real time: streaming and recording 1024 channels of the
simulated device at 30 kHz, with detection on and off, measured one after the other in one run.

For each variant, `target/release/ephysd run` starts with its defaults except:
`device.channels` (1024), a temporary `recording.base_path`, `server.base_port` (51151, away
from the Allego ports the tests use) and
- "detection on": `recording.recording_type = continuous_and_spikes` (`/samples` and
  `/spikes`), processing as configured by default (filters, filtered cache, spike-band
  highpass, detector, the KPI reader);
- "detection off": `processing.detection = false`, `recording.recording_type = continuous`.
`ephysd stream start` and `ephysd record start` start it; after a settling time, the
process's user + system CPU time (utime + stime of /proc/<pid>/stat, all threads) is read at
the start and end of a `--seconds` window, and printed as % of one core, with each thread's
share (/proc/<pid>/task/*/stat). The recording's length is checked against the wall time, so
a daemon that fell behind would show.

`--frames-per-block N` sets `device.frames_per_block` in both variants (default: the
daemon's own, 128), to weigh a lab's choice between spike latency and CPU.

Usage (from the repository root, after `cargo build --release -p ephysd`):

    python daemon/benches/cpu_paced.py [--channels 1024] [--seconds 60] [--settle 5]
        [--base-port 51151] [--frames-per-block N]

Standard library only. Each variant writes `--seconds` plus the settling time of recording
(3.7 GB per minute at 1024 channels) into a temporary directory, deleted afterwards.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from daemon_process import EPHYSD, cli, wait_for_port  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def stat_fields(path: Path) -> tuple[str, list[str]]:
    """The command name and the fields after it of a /proc stat file."""
    text = path.read_text()
    name = text[text.index("(") + 1 : text.rindex(")")]
    return name, text[text.rindex(")") + 2 :].split()


def cpu_ticks(path: Path) -> int:
    _, f = stat_fields(path)
    # utime and stime are fields 14 and 15 of stat(5); f starts at field 3.
    return int(f[11]) + int(f[12])


def threads(pid: int) -> dict[str, int]:
    """CPU ticks per thread, keyed by thread name and id."""
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            name, _ = stat_fields(task / "stat")
            out[f"{name}[{task.name}]"] = cpu_ticks(task / "stat")
        except (FileNotFoundError, ProcessLookupError):
            pass
    return out


def measure(
    name: str, extra_env: dict, channels: int, seconds: float, settle: float, base_port: int, frames_per_block
) -> float:
    scratch = Path(tempfile.mkdtemp(prefix="ephysd-cpu-"))
    env = {
        "PATH": os.environ.get("PATH", ""),
        "EPHYSD_SERVER__BASE_PORT": str(base_port),
        "EPHYSD_RECORDING__BASE_PATH": str(scratch / "recordings"),
        "EPHYSD_RECORDING__MIN_FREE_MB": "0",
        "EPHYSD_DEVICE__CHANNELS": str(channels),
        **({"EPHYSD_DEVICE__FRAMES_PER_BLOCK": str(frames_per_block)} if frames_per_block else {}),
        **extra_env,
    }
    log = open(scratch / "ephysd.log", "w")
    proc = subprocess.Popen([str(EPHYSD), "run"], env=env, stdout=subprocess.DEVNULL, stderr=log)
    try:
        wait_for_port(base_port + 4, proc, 60)
        cli(base_port, "stream", "start")
        cli(base_port, "record", "start")
        time.sleep(settle)
        stat = Path(f"/proc/{proc.pid}/stat")
        rec0 = cli(base_port, "status")["recording"]["duration_s"] or 0.0
        t0, c0, th0 = time.monotonic(), cpu_ticks(stat), threads(proc.pid)
        time.sleep(seconds)
        t1, c1, th1 = time.monotonic(), cpu_ticks(stat), threads(proc.pid)
        rec1 = cli(base_port, "status")["recording"]["duration_s"] or 0.0
        cli(base_port, "record", "stop")
        wall = t1 - t0
        share = (c1 - c0) / TICK / wall * 100.0
        print(
            f"{name}: {share:.1f} % of one core over {wall:.1f} s "
            f"({(c1 - c0) / TICK:.2f} s CPU; recording advanced {rec1 - rec0:.1f} s of signal in that time)"
        )
        busiest = sorted(((th1[k] - th0.get(k, 0), k) for k in th1), reverse=True)
        for ticks, thread in busiest:
            if ticks > 0:
                print(f"    {thread:<28} {ticks / TICK / wall * 100.0:5.1f} %")
        return share
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=120)
        except subprocess.TimeoutExpired:
            proc.kill()
        log.close()
        shutil.rmtree(scratch, ignore_errors=True)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--channels", type=int, default=1024)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--settle", type=float, default=5.0)
    ap.add_argument("--base-port", type=int, default=51151)
    ap.add_argument("--frames-per-block", type=int, default=None)
    args = ap.parse_args()
    if not EPHYSD.exists():
        raise SystemExit(f"{EPHYSD} is missing: cargo build --release -p ephysd")
    block = f"{args.frames_per_block} frames per block" if args.frames_per_block else "default blocks"
    print(
        f"paced to real time, {args.channels} ch x 30 kHz, {block}, streaming and recording, {os.cpu_count()} cores"
    )
    on = measure(
        "detection on (continuous_and_spikes)",
        {"EPHYSD_RECORDING__RECORDING_TYPE": "continuous_and_spikes"},
        args.channels,
        args.seconds,
        args.settle,
        args.base_port,
        args.frames_per_block,
    )
    off = measure(
        "detection off (continuous)",
        {"EPHYSD_PROCESSING__DETECTION": "false", "EPHYSD_RECORDING__RECORDING_TYPE": "continuous"},
        args.channels,
        args.seconds,
        args.settle,
        args.base_port,
        args.frames_per_block,
    )
    print(f"detection on - off: {on - off:+.1f} % of one core")


if __name__ == "__main__":
    main()
