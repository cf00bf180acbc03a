"""A real `gpt2 serve` on a free 127.0.0.1 port, for the tests that talk HTTP to it.

`start_server(*args)` runs `gpt2 serve --port PORT *args` in its own process group, waits until
GET /health answers 200 (bounded; with wait=False, call Served.wait_ready() later), and returns a
Served (its base URL, the process, its log);
every server started is stopped (SIGTERM, then SIGKILL) when the test ends. `demo_server` is one
shared server on the demo model for a whole module.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

pytest.importorskip("fastapi")
pytest.importorskip("uvicorn")

START_TIMEOUT = 60  # seconds for the model to load and /health to answer 200


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Served:
    url: str  # http://127.0.0.1:PORT
    process: subprocess.Popen
    log: Path

    @property
    def api(self) -> str:
        return self.url + "/v1"

    def stop(self, timeout: float = 30) -> int:
        """SIGTERM, and the exit code (SIGKILL after `timeout`: a hang fails the caller's checks)."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        return self.process.returncode

    def log_text(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_ready(self, timeout: float = START_TIMEOUT) -> Served:
        """Poll GET /health until it answers 200 (an exit or the timeout fails the test)."""
        import httpx

        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"gpt2 serve exited with {self.process.returncode}: {self.log_text()[-2000:]}")
            try:
                if httpx.get(self.url + "/health", timeout=2).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop(5)
        raise AssertionError(f"gpt2 serve not ready after {timeout} s: {self.log_text()[-2000:]}")


def _start(args: tuple[str, ...], log: Path, env: dict[str, str] | None = None, wait: bool = True) -> Served:
    port = free_port()
    out = open(log, "w")
    process = subprocess.Popen([sys.executable, "-m", "gpt2.cli.main", "serve", "--port", str(port), *args],
                               stdout=out, stderr=subprocess.STDOUT, start_new_session=True,
                               env={**os.environ, **(env or {})})
    out.close()
    served = Served(f"http://127.0.0.1:{port}", process, log)
    return served.wait_ready() if wait else served


@pytest.fixture
def start_server(tmp_path):
    """start_server(*args, env=None, wait=True) -> Served; stopped when the test ends."""
    started: list[Served] = []

    def start(*args: str, env: dict[str, str] | None = None, wait: bool = True) -> Served:
        served = _start(args, tmp_path / f"serve-{len(started)}.log", env, wait)
        started.append(served)
        return served

    yield start
    for served in started:
        served.stop(10)


@pytest.fixture(scope="module")
def demo_server(tmp_path_factory):
    """One `gpt2 serve` on the demo model for the module's tests."""
    served = _start(("--model", "demo"), tmp_path_factory.mktemp("serve") / "serve.log")
    yield served
    served.stop(10)
