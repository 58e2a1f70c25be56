"""Pools of sandbox workers: idle ones of one kind topped up in the background, and zygotes by key under one cap."""

from __future__ import annotations

import collections
import threading
import time
from collections.abc import Callable, Hashable
from concurrent.futures import ThreadPoolExecutor

from toolrt.adapters.local.workers import Worker
from toolrt.domain import ExecutionError
from toolrt.logs import get_logger

__all__ = ["WorkerPool", "ZygotePools"]

log = get_logger(__name__)


def _kill(worker: Worker) -> None:
    worker.kill()


class WorkerPool:
    """Idle workers of one kind, started ahead of need and topped up in the background to ``size``.

    Each is taken once with :meth:`take`: single-use Node workers, and pristine zygotes (bound to a
    pool of :class:`ZygotePools` when taken). A pool of size 0 keeps nothing: each take starts one.
    """

    def __init__(
        self,
        size: int,
        factory: Callable[[], Worker],
        spawner: ThreadPoolExecutor,
        retire: Callable[[Worker], None] | None = None,
    ) -> None:
        self._size = size
        self._factory = factory
        self._spawner = spawner
        # How a worker it no longer keeps is ended (the sandbox's own bookkeeping goes with it).
        self._retire = retire if retire is not None else _kill
        self._idle: collections.deque[Worker] = collections.deque()
        self._pending = 0
        self._lock = threading.Lock()
        self._closed = False

    def take(self, refill: bool) -> Worker:
        """An idle worker if there is one, else a freshly started one; ``refill`` tops the pool up."""
        with self._lock:
            worker = self._idle.popleft() if self._idle else None
        if refill:
            self.fill()
        return worker if worker is not None else self._factory()

    def fill(self) -> None:
        with self._lock:
            missing = self._size - len(self._idle) - self._pending
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
        with self._lock:
            self._pending -= 1
            if not self._closed:
                self._idle.append(worker)
                return
        self._retire(worker)

    def idle_count(self) -> int:
        with self._lock:
            return len(self._idle)

    def close(self) -> None:
        with self._lock:
            self._closed = True
            idle, self._idle = list(self._idle), collections.deque()
        for worker in idle:
            self._retire(worker)


class ZygotePools:
    """Reusable zygotes by pool key, bounded for all keys together.

    A key's call takes one of its idle zygotes (the most recently used); when it has none and fewer
    than ``per_key`` are live, ``factory(key)`` gives it a new one (a pristine zygote forked ahead of
    time, bound to the key from then on); else the call waits up to ``wait_s`` for one to come back,
    then gets an extra one. At most ``max_zygotes`` zygotes are kept in all, and the idle ones hold
    at most ``max_idle_bytes`` together (each as measured before its last call): past either, the
    least recently used idle zygotes of any key are retired, and a zygote that comes back while the
    pool is over its cap is retired rather than kept. :meth:`sweep` retires those idle for longer
    than ``idle_s``. ``retire(worker)`` ends a zygote; it is called outside the lock. With
    ``keep=False`` no zygote is kept after its call (each call gets a new one).
    """

    def __init__(
        self,
        factory: Callable[[Hashable], Worker],
        retire: Callable[[Worker], None],
        *,
        per_key: int,
        max_zygotes: int,
        max_idle_bytes: int,
        idle_s: float,
        keep: bool = True,
    ) -> None:
        self._factory = factory
        self._keep = keep
        self._retire = retire
        self._per_key = max(1, per_key)
        self._max = max(1, max_zygotes)
        self._max_bytes = max_idle_bytes
        self._idle_s = idle_s
        self._idle: dict[Hashable, list[Worker]] = {}
        # Every idle zygote, least recently used first: (its key, when it came back).
        self._lru: collections.OrderedDict[Worker, tuple[Hashable, float]] = collections.OrderedDict()
        self._live: collections.Counter[Hashable] = collections.Counter()
        self._total = 0
        self._idle_bytes = 0
        self._lock = threading.Lock()
        self._returned = threading.Condition(self._lock)
        self._closed = False

    def take(self, key: Hashable, wait_s: float) -> Worker:
        """An idle zygote of ``key``, else a new one (see the class), else the first of ``key`` to come back."""
        deadline = time.monotonic() + wait_s
        with self._returned:
            while True:
                if self._closed:
                    raise ExecutionError("the sandbox is closed")
                idle = self._idle.get(key)
                if idle:
                    worker = idle.pop()
                    if not idle:
                        del self._idle[key]
                    self._drop_idle(worker)
                    return worker
                remaining = deadline - time.monotonic()
                if self._live[key] < self._per_key or remaining <= 0:
                    break  # (past the wait: every zygote of this key is held by a long call)
                self._returned.wait(remaining)
            self._live[key] += 1
            self._total += 1
            victims = self._over_cap()
        for victim in victims:
            self._retire(victim)
        try:
            return self._factory(key)
        except BaseException:
            self.forget(key)
            raise

    def give_back(self, key: Hashable, worker: Worker) -> None:
        """A zygote of ``key`` is done with its call: kept idle, or retired when over the cap, closed,
        or no longer ``reusable`` (its template was retired)."""
        with self._returned:
            if self._closed or not self._keep or not getattr(worker, "reusable", True):
                victims = [worker]
                self._live[key] -= 1
                self._total -= 1
            else:
                self._idle.setdefault(key, []).append(worker)
                self._lru[worker] = (key, time.monotonic())
                self._idle_bytes += getattr(worker, "idle_bytes", 0)
                victims = self._over_cap()
            self._returned.notify_all()
        for victim in victims:
            self._retire(victim)

    def forget(self, key: Hashable) -> None:
        """A zygote taken for ``key`` is gone (the caller retired it, or it never started): its place is free."""
        with self._returned:
            self._live[key] -= 1
            self._total -= 1
            if self._live[key] <= 0:
                del self._live[key]
            self._returned.notify_all()

    def sweep(self) -> None:
        """Retire the zygotes idle for longer than ``idle_s``."""
        cutoff = time.monotonic() - self._idle_s
        victims: list[Worker] = []
        with self._lock:
            while self._lru:
                worker, (_, since) = next(iter(self._lru.items()))
                if since > cutoff:
                    break
                victims.append(self._evict(worker))
        for victim in victims:
            self._retire(victim)

    def retire_idle(self, which: Callable[[Worker], bool]) -> None:
        """Retire the idle zygotes ``which`` picks (those of a retired template)."""
        with self._lock:
            victims = [self._evict(worker) for worker in list(self._lru) if which(worker)]
        for victim in victims:
            self._retire(victim)

    def _drop_idle(self, worker: Worker) -> None:
        self._lru.pop(worker, None)
        self._idle_bytes -= getattr(worker, "idle_bytes", 0)

    def _evict(self, worker: Worker) -> Worker:
        key, _ = self._lru[worker]
        self._idle[key].remove(worker)
        if not self._idle[key]:
            del self._idle[key]
        self._drop_idle(worker)
        self._live[key] -= 1
        if self._live[key] <= 0:
            del self._live[key]
        self._total -= 1
        return worker

    def _over_cap(self) -> list[Worker]:
        victims = []
        while self._lru and (self._total > self._max or self._idle_bytes > self._max_bytes):
            victims.append(self._evict(next(iter(self._lru))))
        return victims

    def crowded(self) -> bool:
        """Whether the zygotes kept are at the cap: an idle one is likely retired before its pool
        calls again, so what it would prepare for its next call is likely wasted."""
        with self._lock:
            return self._total >= self._max

    def counts(self) -> tuple[int, int]:
        """Zygotes live (idle, busy or starting) and idle, in all."""
        with self._lock:
            return self._total, len(self._lru)

    def idle(self) -> list[tuple[Hashable, Worker]]:
        """The idle zygotes and their keys, least recently used first."""
        with self._lock:
            return [(key, worker) for worker, (key, _) in self._lru.items()]

    def close(self) -> None:
        """Retire every idle zygote; the busy ones are retired as they come back."""
        with self._returned:
            self._closed = True
            victims = list(self._lru)
            self._lru.clear()
            self._idle.clear()
            self._idle_bytes = 0
            self._returned.notify_all()
        for victim in victims:
            self._retire(victim)
