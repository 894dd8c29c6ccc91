"""The release daemon as the benchmark scripts run it: where it is, waiting for its ports,
and driving it through its command line (`ephysd status|stream|record ... --json`).

Standard library only; imported by the scripts next to it.
"""

from __future__ import annotations

import json
import socket
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
EPHYSD = ROOT / "target" / "release" / "ephysd"


def wait_for_port(port: int, proc: subprocess.Popen, timeout: float) -> None:
    """Waits until `port` accepts connections; stops the script if the daemon exits first."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if proc.poll() is not None:
                raise SystemExit(f"ephysd exited early with {proc.returncode}")
            if time.monotonic() > deadline:
                raise SystemExit(f"port {port} did not open in {timeout} s")
            time.sleep(0.05)


def cli(base_port: int, *args: str) -> dict:
    """Runs one `ephysd` command against the daemon on `base_port`; returns its JSON answer.

    The timeout is generous: starting a 1024-channel stream faults in gigabytes of cache on
    2 MiB pages, which took up to 8 s here when the kernel first had to free and compact memory
    (the command line's default of 10 s is then too close)."""
    out = subprocess.run(
        [str(EPHYSD), *args, "--addr", f"127.0.0.1:{base_port}", "--json", "--timeout", "60"],
        check=True,
        capture_output=True,
        text=True,
    )
    return json.loads(out.stdout)
