"""The zygote pool: reuse, waiting for a busy worker instead of cold-starting, and its bounds."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from toolrt.adapters.local.worker_pool import WorkerPool


class Fake:
    started = 0

    def __init__(self) -> None:
        Fake.started += 1
        self.killed = False

    def kill(self) -> None:
        self.killed = True


def _pool(size: int) -> tuple[WorkerPool, ThreadPoolExecutor]:
    Fake.started = 0
    spawner = ThreadPoolExecutor(2)
    return WorkerPool(size, Fake, spawner), spawner  # type: ignore[arg-type]


def test_a_busy_pool_hands_over_a_returned_worker_instead_of_starting_one() -> None:
    pool, spawner = _pool(1)
    first: Any = pool.take_reusable(5.0)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pool.take_reusable(5.0)))
    waiter.start()
    time.sleep(0.1)
    assert got == []  # waiting, not starting a second worker
    assert pool.give_back(first)
    waiter.join(5)
    assert got == [first] and Fake.started == 1
    spawner.shutdown()


def test_when_the_wait_runs_out_an_extra_worker_starts_and_is_not_kept() -> None:
    pool, spawner = _pool(1)
    first: Any = pool.take_reusable(5.0)
    extra: Any = pool.take_reusable(0.05)
    assert extra is not first and Fake.started == 2
    assert pool.give_back(first) is True
    assert pool.give_back(extra) is False  # the caller retires it: the pool keeps its size
    spawner.shutdown()


def test_a_retired_worker_frees_its_place() -> None:
    pool, spawner = _pool(1)
    pool.take_reusable(5.0)
    pool.release()
    started = time.monotonic()
    pool.take_reusable(5.0)
    assert time.monotonic() - started < 4.0 and Fake.started == 2  # no wait for a worker that is gone
    spawner.shutdown()


def test_a_pool_of_size_zero_starts_one_per_call_without_waiting() -> None:
    pool, spawner = _pool(0)
    pool.take_reusable(30.0)
    pool.take_reusable(30.0)
    assert Fake.started == 2
    spawner.shutdown()
