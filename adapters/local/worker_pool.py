"""Idle sandbox workers of one kind, topped up in the background so that calls find one ready."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from toolrt.adapters.local.workers import Worker
from toolrt.application.logs import get_logger

__all__ = ["WorkerPool"]

log = get_logger(__name__)


class WorkerPool:
    """Idle workers of one kind, topped up in the background to ``size``.

    Single-use workers (Node) are taken with :meth:`take`. Reusable ones (Python zygotes, which serve
    one call at a time) are taken with :meth:`take_reusable` and come back with :meth:`give_back` or
    :meth:`release`: at most ``size`` of them are live, and a call that finds them all busy waits for
    one to come back (up to ``wait_s``) rather than paying a cold start for a zygote that would be
    killed on return. Only when the wait runs out (every zygote held by a long call) does it start
    an extra one; a pool of size 0 keeps nothing and starts one per call.
    """

    def __init__(self, size: int, factory: Callable[[], Worker], spawner: ThreadPoolExecutor) -> None:
        self._size = size
        self._factory = factory
        self._spawner = spawner
        self._idle: collections.deque[Worker] = collections.deque()
        self._pending = 0
        self._busy = 0
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._closed = False

    def take_reusable(self, wait_s: float) -> Worker:
        """An idle reusable worker, a new one while fewer than ``size`` are live, else the first to come back."""
        deadline = time.monotonic() + wait_s
        with self._returned:
            while True:
                if self._idle:
                    self._busy += 1
                    return self._idle.popleft()
                if self._closed or self._size == 0 or self._busy + self._pending < self._size:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break  # every worker is held by a long call: start an extra one
                self._returned.wait(remaining)
            self._busy += 1
        try:
            return self._factory()
        except BaseException:
            self.release()
            raise

    def release(self) -> None:
        """A reusable worker taken with :meth:`take_reusable` is gone (retired): its place is free."""
        with self._returned:
            self._busy = max(0, self._busy - 1)
            self._returned.notify()

    def take(self, refill: bool) -> Worker:
        """An idle worker if there is one, else a freshly started one; ``refill`` tops the pool up."""
        with self._lock:
            worker = self._idle.popleft() if self._idle else None
        if refill:
            self.fill()
        return worker if worker is not None else self._factory()

    def give_back(self, worker: Worker) -> bool:
        """Keep a still-usable worker (zygotes) when the pool has room; False means the caller kills it."""
        with self._returned:
            self._busy = max(0, self._busy - 1)
            self._returned.notify()
            if not self._closed and len(self._idle) + self._pending < self._size:
                self._idle.append(worker)
                return True
        return False

    def fill(self) -> None:
        with self._lock:
            missing = self._size - len(self._idle) - self._pending - self._busy
            if self._closed or missing <= 0:
                return
            self._pending += missing
        for _ in range(missing):
            try:
                self._spawner.submit(self._spawn_one)
            except RuntimeError:  # the executor is shutting down
                with self._lock:
                    self._pending -= 1

    def _spawn_one(self) -> None:
        try:
            worker = self._factory()
        except Exception as exc:  # a failed refill must not break callers; the next take() retries
            with self._lock:
                self._pending -= 1
                closed = self._closed
            if not closed:  # a pool closed while a worker was starting is not worth a warning
                log.warning("could not pre-start a sandbox worker", error=str(exc))
            return
        with self._returned:
            self._pending -= 1
            if not self._closed:
                self._idle.append(worker)
                self._returned.notify()
                return
        worker.kill()

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._returned:
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
            self._returned.notify_all()
        for worker in idle:
            worker.kill()
