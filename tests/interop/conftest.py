"""Shared fixtures: the ephysd binary, and a daemon process on the fixed Allego ports."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from radiens_core import AllegoClient

REPO = Path(__file__).resolve().parents[2]
ALLEGO_PORTS = range(50051, 50056)


def ephysd_binary() -> Path:
    target = Path(os.environ.get("CARGO_TARGET_DIR") or REPO / "target")
    path = target / "debug" / "ephysd"
    if not path.exists():
        subprocess.run(["cargo", "build", "-q", "-p", "ephysd"], cwd=REPO, check=True)
    return path


def port_open(port: int) -> bool:
    """Whether something listens on the port. With nothing listening, a connection can still
    succeed: Linux may pick the port itself as the ephemeral source port (32768-60999 holds the
    Allego ports), and a socket connecting to its own address connects to itself. That is not
    a listener."""
    with socket.socket() as s:
        s.settimeout(0.2)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return False
        return s.getsockname() != s.getpeername()


def port_bindable(port: int) -> bool:
    """Whether a listener could bind the port now. A port can be free of listeners and still
    not bindable: a client connection that used it as its ephemeral local port (Linux picks
    those from 32768-60999, which holds the Allego ports) leaves it in TIME_WAIT for 60 s."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def wait_ports_bindable(timeout: float = 75.0) -> None:
    deadline = time.monotonic() + timeout
    while not all(port_bindable(p) for p in ALLEGO_PORTS):
        if time.monotonic() > deadline:
            busy = [p for p in ALLEGO_PORTS if not port_bindable(p)]
            raise RuntimeError(f"Allego ports {busy} cannot be bound after {timeout} s")
        time.sleep(0.2)


class Daemon:
    """An ephysd process started for one test, stopped with SIGTERM at the end."""

    def __init__(self, env: dict[str, str], log_path: Path):
        self.log_path = log_path
        wait_ports_bindable()
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(
            [str(ephysd_binary()), "run"], env=env, stdout=self.log, stderr=subprocess.STDOUT, cwd=REPO
        )
        deadline = time.monotonic() + 30
        try:
            while not all(port_open(p) for p in ALLEGO_PORTS):
                if self.proc.poll() is not None:
                    raise RuntimeError(f"ephysd exited with {self.proc.returncode}: {self.output()}")
                if time.monotonic() > deadline:
                    raise RuntimeError(f"ephysd did not listen within 30 s: {self.output()}")
                time.sleep(0.05)
        except BaseException:
            self.close()
            raise

    def output(self) -> str:
        if not self.log.closed:
            self.log.flush()
        return self.log_path.read_text(errors="replace")

    def terminate(self, timeout: float = 5.0) -> tuple[int, float]:
        """Sends SIGTERM; returns (exit code, seconds it took)."""
        start = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=timeout)
        return code, time.monotonic() - start

    def kill(self) -> int:
        """Sends SIGKILL, as a crash or the OOM killer would: nothing is finalized. Returns
        the exit code (-9)."""
        self.proc.send_signal(signal.SIGKILL)
        return self.proc.wait(timeout=10)

    def close(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


@pytest.fixture
def daemon_env(tmp_path: Path) -> dict[str, str]:
    if any(port_open(p) for p in ALLEGO_PORTS):
        pytest.fail("an Allego port (50051-50055) is already in use; stop the other server first")
    env = {k: v for k, v in os.environ.items() if not k.startswith("EPHYSD_")}
    env.update(
        {
            "EPHYSD_RECORDING__BASE_PATH": str(tmp_path / "recordings"),
            "EPHYSD_RECORDING__BASE_NAME": "interop",
            # The host's free space is not what these tests are about: the tests of the
            # free-space refusal set the key themselves.
            "EPHYSD_RECORDING__MIN_FREE_MB": "0",
            "EPHYSD_DEVICE__CHANNELS": "32",
            "EPHYSD_CACHE__SECONDS": "10",
            "RUST_LOG": "info",
            # radiens-core: identify by the server's hardware UUID, never try cloud sign-in.
            "RADIENS_OFFLINE": "1",
        }
    )
    os.environ["RADIENS_OFFLINE"] = "1"
    return env


@pytest.fixture
def daemon(daemon_env, tmp_path):
    d = Daemon(daemon_env, tmp_path / "ephysd.log")
    yield d
    d.close()


@pytest.fixture
def start_daemon(daemon_env, tmp_path):
    """Starts daemons one after another in one test (each on the Allego ports, so the previous
    one must have exited): `start_daemon(**env_overrides)` returns a `Daemon` started with
    `daemon_env` plus the overrides, its output in ephysd-<n>.log. Every one still running at
    the end is killed."""
    started: list[Daemon] = []

    def start(**overrides: str) -> Daemon:
        for earlier in started:
            if earlier.proc.poll() is None:
                raise RuntimeError("an earlier daemon of this test is still running")
        deadline = time.monotonic() + 10
        while any(port_open(p) for p in ALLEGO_PORTS):
            if time.monotonic() > deadline:
                raise RuntimeError("the Allego ports are still in use 10 s after the previous daemon exited")
            time.sleep(0.05)
        d = Daemon({**daemon_env, **overrides}, tmp_path / f"ephysd-{len(started) + 1}.log")
        started.append(d)
        return d

    yield start
    for d in started:
        d.close()


@pytest.fixture
def client(daemon):
    """A client of the default daemon (sim-spikes, 32 channels, 10 s cache)."""
    c = AllegoClient()
    yield c
    c.close()


@pytest.fixture
def sine_client(start_daemon):
    """A client of a sim-sine daemon."""
    start_daemon(EPHYSD_DEVICE__BACKBONE="sim-sine")
    c = AllegoClient()
    yield c
    c.close()
