"""Communicators for data-parallel training: a small interface and two implementations.

The data-parallel trainer needs five things from a collective engine: its ``rank`` and ``size``,
an in-place sum all-reduce of one flat buffer, an in-place broadcast, and a barrier. Behind this
interface sit :class:`LocalCommunicator` (one process, no-ops) and :class:`MpiCommunicator`
(``mpi4py``, the ``distributed`` extra); another engine (torch.distributed's gloo, say) would be a
third class, with no change to the trainer.

Failure handling: every MPI collective is non-blocking and polled against a deadline. A rank
that dies or hangs never joins the collective, so the others stop waiting after ``timeout``
seconds, ask every rank whether it is alive (point-to-point pings that waiting ranks answer
while they poll) and raise :class:`RankFailure` naming the ranks that did not answer. The
launcher (``mpiexec``) usually ends the job sooner, as soon as it sees a process die.
"""
from __future__ import annotations

import sys
import time
from typing import Protocol

import numpy as np

from ..core.errors import GraphError

_PING, _PONG = 17, 18


class RankFailure(GraphError):
    """Another rank died, hung or raised: the collective cannot complete."""


class Communicator(Protocol):
    """What data-parallel training needs from a collective engine."""

    rank: int
    size: int

    def allreduce(self, buf: np.ndarray) -> None:
        """Replaces ``buf`` (one contiguous array) by its elementwise sum over all ranks."""

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        """Overwrites ``buf`` on every rank with its value on ``root``."""

    def barrier(self) -> None:
        """Returns once every rank has called it."""

    def abort(self, code: int) -> None:
        """Ends every rank of the job now (after a failure on this one)."""


class LocalCommunicator:
    """One process: the collectives are no-ops, so the data-parallel code runs unchanged."""

    rank, size = 0, 1

    def allreduce(self, buf: np.ndarray) -> None:
        pass

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        pass

    def barrier(self) -> None:
        pass

    def abort(self, code: int) -> None:
        raise SystemExit(code)


class MpiCommunicator:
    """MPI through mpi4py, each collective polled against ``timeout`` seconds.

    ``comm`` defaults to a duplicate of ``MPI.COMM_WORLD`` (so user messages on the world
    communicator cannot mix with ours); a second duplicate carries the liveness pings.
    """

    def __init__(self, comm=None, timeout: float = 20.0):
        try:
            from mpi4py import MPI
        except ImportError as e:  # pragma: no cover - exercised without the extra
            raise GraphError("MPI training needs mpi4py: pip install 'graphdl[distributed]'") \
                from e
        self._mpi = MPI
        base = comm if comm is not None else MPI.COMM_WORLD
        self.comm, self.ctrl = base.Dup(), base.Dup()
        for c in (self.comm, self.ctrl):
            c.Set_errhandler(MPI.ERRORS_RETURN)  # MPI errors raise, so we can name the rank
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self.timeout = float(timeout)
        self._pongs: list = []  # pending answers, kept alive until sent
        self.what = "a collective"  # the trainer says where it is, for the error message

    def allreduce(self, buf: np.ndarray) -> None:
        self._wait(self.comm.Iallreduce(self._mpi.IN_PLACE, buf, op=self._mpi.SUM),
                   "all-reduce")

    def broadcast(self, buf: np.ndarray, root: int = 0) -> None:
        self._wait(self.comm.Ibcast(buf, root=root), "broadcast")

    def barrier(self) -> None:
        self._wait(self.comm.Ibarrier(), "barrier")

    def abort(self, code: int) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)

    # -- polling and liveness ------------------------------------------------------------------
    def _wait(self, request, op: str) -> None:
        """Polls ``request`` (answering pings meanwhile) until it completes; RankFailure naming
        the silent ranks when it times out or MPI reports a broken connection."""
        deadline = time.monotonic() + self.timeout
        spins, pause = 0, 2e-5
        try:
            while not request.Test():
                self._answer_pings()
                spins += 1
                if spins > 200:  # spin briefly (latency), then back off (leave the cores free)
                    time.sleep(pause)
                    pause = min(pause * 2, 1e-3)
                if time.monotonic() > deadline:
                    raise self._failure(f"no {op} within {self.timeout:g} s")
        except self._mpi.Exception as e:
            raise self._failure(f"{op} failed ({' '.join(e.Get_error_string().split())})") \
                from e

    def _failure(self, what: str) -> RankFailure:
        dead = self._unresponsive()
        who = (f"rank {dead[0]}" if len(dead) == 1 else
               f"ranks {', '.join(map(str, dead))}" if dead else "a rank")
        return RankFailure(f"{who} stopped responding (died or hung): {what} during "
                           f"{self.what}; rank {self.rank} of {self.size} gives up")

    def _answer_pings(self) -> None:
        MPI = self._mpi
        status = MPI.Status()
        while self.ctrl.Iprobe(source=MPI.ANY_SOURCE, tag=_PING, status=status):
            src = status.Get_source()
            self.ctrl.recv(source=src, tag=_PING)
            self._pongs.append(self.ctrl.isend(self.rank, dest=src, tag=_PONG))

    def _unresponsive(self, wait: float | None = None) -> list[int]:
        """The ranks that do not answer a ping within ``wait`` seconds."""
        wait = min(5.0, max(2.0, self.timeout / 4)) if wait is None else wait
        others = [r for r in range(self.size) if r != self.rank]
        MPI, status = self._mpi, self._mpi.Status()
        sent, alive = [], set()
        for r in others:
            try:  # never waited on: a send to a dead rank may not complete
                sent.append(self.ctrl.isend(None, dest=r, tag=_PING))
            except MPI.Exception:
                pass
        deadline = time.monotonic() + wait
        try:
            while time.monotonic() < deadline and len(alive) < len(others):
                self._answer_pings()
                while self.ctrl.Iprobe(source=MPI.ANY_SOURCE, tag=_PONG, status=status):
                    alive.add(self.ctrl.recv(source=status.Get_source(), tag=_PONG))
                time.sleep(1e-3)
        except MPI.Exception:
            pass  # a broken connection: the ranks that answered so far are the live ones
        return [r for r in others if r not in alive]


def world(timeout: float = 20.0) -> Communicator:
    """The MPI world when this process was started by an MPI launcher with more than one
    rank (and mpi4py is installed), else a :class:`LocalCommunicator`."""
    if not launched_by_mpi():
        return LocalCommunicator()
    comm = MpiCommunicator(timeout=timeout)
    return comm if comm.size > 1 else LocalCommunicator()


def launched_by_mpi() -> bool:
    """Whether an MPI launcher started this process (its environment says so); importing
    mpi4py outside a launcher is harmless but slow, so plain runs skip it."""
    import os

    keys = ("PMI_RANK", "PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "MPI_LOCALNRANKS")
    return any(k in os.environ for k in keys)


# -- helpers over the interface -----------------------------------------------------------------


def broadcast_arrays(comm: Communicator, arrays: dict[str, np.ndarray],
                     root: int = 0) -> dict[str, np.ndarray]:
    """``arrays`` as on ``root``, one broadcast per dtype (names and shapes must already agree
    on every rank: they come from the same training step)."""
    if comm.size == 1:
        return dict(arrays)
    out: dict[str, np.ndarray] = {}
    for dtype in sorted({np.asarray(a).dtype.str for a in arrays.values()}):
        names = [k for k in sorted(arrays) if np.asarray(arrays[k]).dtype.str == dtype]
        flat = np.concatenate([np.asarray(arrays[k]).ravel() for k in names])
        comm.broadcast(flat, root)
        out.update(unflatten(flat, {k: np.shape(arrays[k]) for k in names}))
    return out


def broadcast_bytes(comm: Communicator, data: bytes | None, root: int = 0) -> bytes:
    """``data`` from ``root`` on every rank (its length first, then the bytes)."""
    if comm.size == 1:
        return data or b""
    n = np.array([len(data or b"") if comm.rank == root else 0], np.int64)
    comm.broadcast(n, root)
    buf = np.frombuffer(data, np.uint8).copy() if comm.rank == root else np.empty(n[0], np.uint8)
    comm.broadcast(buf, root)
    return buf.tobytes()


def unflatten(flat: np.ndarray, shapes: dict[str, tuple[int, ...]]) -> dict[str, np.ndarray]:
    """Copies of consecutive slices of ``flat`` reshaped to ``shapes``, in their order."""
    out, start = {}, 0
    for name, shape in shapes.items():
        size = int(np.prod(shape, dtype=np.int64))
        out[name] = flat[start:start + size].reshape(shape).copy()
        start += size
    return out
