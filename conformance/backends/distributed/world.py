"""The coordinator of a vocab-parallel world: R rank processes (rank.py) on torch.distributed, started here with
torchrun's environment variables, or started by a launcher (torchrun, on any machines) and connecting here.

Each call goes to every rank at once; a rank that does not answer within the call's time, or dies, fails that
call (RankFailure) and the world is started afresh for the next one. A world whose ranks were launched elsewhere
cannot be restarted from here: after a failure every later call fails with the first one's reason.
"""
import atexit
import os
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from multiprocessing.connection import Listener, wait

from .rank import AUTHKEY_VARIABLE, COORDINATOR_VARIABLE, SPAWNED_VARIABLE

START_TIMEOUT_S = 300.0  # R processes importing torch on a loaded machine, and the process group's rendezvous


class WorldError(Exception):
    """The ranks could not be started or could not join (the message says why, with their own words)."""


class RankFailure(Exception):
    """A world that failed in a way no case accepts: a rank hung, died, or answered otherwise than another rank.
    The call fails whatever its case expects (conformance/verdict/checks.py), never passes as a raise."""


def _free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class World:
    """R ranks answering calls. ``listen`` ("host:port"): wait there for ranks launched elsewhere (the authkey is
    then LOSS_CONFORMANCE_AUTHKEY, which they share), else start them here."""

    def __init__(self, spec, device, world_size, listen=None, group_timeout=1800.0):
        self.spec, self.device, self.world_size, self.listen = spec, device, world_size, listen
        self.group_timeout = group_timeout
        self.broken = None  # why the world failed, until it is started again
        self._connections, self._processes, self._logs, self._listener = {}, [], [], None
        atexit.register(self.close)

    def start(self):
        """Start (or restart) the ranks and wait until each has joined the process group; WorldError if not."""
        self.close()
        if self.listen:
            host, _, port = self.listen.rpartition(":")
            key = os.environ.get(AUTHKEY_VARIABLE)
            if not key:
                raise WorldError(f"--rank-listen needs {AUTHKEY_VARIABLE} (hex), shared with the launched ranks")
            self._listener = Listener((host or "0.0.0.0", int(port)), authkey=bytes.fromhex(key))
        else:
            key = secrets.token_hex(16)
            self._listener = Listener(("127.0.0.1", 0), authkey=bytes.fromhex(key))
            self._spawn(key)
        deadline = time.monotonic() + START_TIMEOUT_S
        self._accept(deadline)
        for connection in self._connections.values():
            connection.send(("setup", self.spec, self.device, self.group_timeout))
        self._await_ready(deadline)
        self.broken = None

    def _spawn(self, key):
        host, port = self._listener.address
        common = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()),
                      WORLD_SIZE=str(self.world_size), LOCAL_WORLD_SIZE=str(self.world_size), GROUP_RANK="0",
                      OMP_NUM_THREADS="1", **{COORDINATOR_VARIABLE: f"{host}:{port}", AUTHKEY_VARIABLE: key,
                                              SPAWNED_VARIABLE: "1"})
        for rank in range(self.world_size):
            log = tempfile.TemporaryFile()
            self._logs.append(log)
            self._processes.append(subprocess.Popen(
                [sys.executable, "-m", "conformance.backends.distributed.rank"], stdin=subprocess.DEVNULL,
                stdout=log, stderr=log, env=dict(common, RANK=str(rank), LOCAL_RANK=str(rank))))

    def _accept(self, deadline):
        """Accept one connection per rank (each says its rank first), in a thread: Listener.accept has no
        timeout, and closing the listener ends it."""
        arrived = []

        def accept():
            try:
                while len(arrived) < self.world_size:
                    connection = self._listener.accept()
                    arrived.append((connection.recv()[1], connection))
            except (OSError, EOFError):
                pass

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        while thread.is_alive() and time.monotonic() < deadline and not self._spawned_died():
            thread.join(0.2)
        if len(arrived) < self.world_size:
            self._listener.close()
            raise WorldError(f"{len(arrived)} of {self.world_size} ranks connected{self._their_words()}")
        self._connections = dict(sorted(arrived))

    def _await_ready(self, deadline):
        for rank, connection in self._connections.items():
            if not connection.poll(max(0.0, deadline - time.monotonic())):
                raise WorldError(f"rank {rank} did not join the process group in time{self._their_words()}")
            try:
                message = connection.recv()
            except EOFError:
                raise WorldError(f"rank {rank} died while joining{self._their_words()}") from None
            if message[0] == "fatal":
                raise WorldError(f"rank {rank}: {message[2]}")

    def _spawned_died(self):
        return any(process.poll() is not None for process in self._processes)

    def _their_words(self):
        """The exit codes and the last lines of the spawned ranks' output, for an error message."""
        words = []
        for rank, (process, log) in enumerate(zip(self._processes, self._logs)):
            log.seek(0)
            tail = log.read().decode(errors="replace").strip().splitlines()[-3:]
            if process.poll() is not None or tail:
                words.append(f"rank {rank} (exit code {process.poll()}): " + " | ".join(tail))
        return "; " + "; ".join(words) if words else ""

    def exchange(self, requests, timeout):
        """Each rank's reply to its request (a list in rank order); RankFailure when one hangs or dies."""
        if self.broken and self.listen:
            raise RankFailure(f"the launched ranks failed at an earlier call ({self.broken}); relaunch them")
        if self.broken or not self._connections:
            self.start()
        pending, replies, died = dict(self._connections), {}, []
        for rank, connection in self._connections.items():
            try:
                connection.send(("call", rank, requests[rank]))
            except OSError:
                died.append(rank)
                pending.pop(rank)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            if died:  # the others may be waiting for the dead one in a collective: give them a moment only
                deadline = min(deadline, time.monotonic() + 2.0)
            for connection in wait(list(pending.values()), timeout=max(0.0, deadline - time.monotonic())):
                rank = next(r for r, c in pending.items() if c is connection)
                pending.pop(rank)
                try:
                    replies[rank] = connection.recv()[2]
                except (EOFError, OSError):
                    died.append(rank)
        if died or pending:
            self.broken = self._failure(died, sorted(pending), timeout)
            raise RankFailure(self.broken)
        return [replies[rank] for rank in range(self.world_size)]

    def _failure(self, died, silent, timeout):
        parts = []
        for rank in died:
            code = self._processes[rank].poll() if self._processes else None
            parts.append(f"rank {rank} died" + (f" (exit code {code})" if code is not None else ""))
        if silent:
            names = ", ".join(str(rank) for rank in silent)
            parts.append(f"rank{'s' if len(silent) > 1 else ''} {names} did not answer within {timeout:g} s")
        return "; ".join(parts)

    def close(self):
        """Stop the ranks: "stop" to each, then kill what started here (a rank blocked in a collective hears
        nothing)."""
        for connection in self._connections.values():
            try:
                connection.send(("stop",))
                connection.close()
            except OSError:
                pass
        for process in self._processes:
            try:
                process.wait(timeout=0.1 if self.broken else 2.0)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
        for log in self._logs:
            log.close()
        if self._listener is not None:
            self._listener.close()
        self._connections, self._processes, self._logs, self._listener = {}, [], [], None
