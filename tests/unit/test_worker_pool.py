"""Worker pools: pre-started workers topped up, and zygotes by key under one cap for all agents."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest

from toolrt.adapters.local.worker_pool import WorkerPool, ZygotePools
from toolrt.domain import ExecutionError


class Fake:
    started = 0

    def __init__(self, key: Any = None, idle_bytes: int = 0) -> None:
        Fake.started += 1
        self.key = key
        self.idle_bytes = idle_bytes
        self.killed = False
        self.reusable = True

    def kill(self) -> None:
        self.killed = True


def _zygotes(
    per_key: int = 1, max_zygotes: int = 8, max_idle_bytes: int = 1 << 40, idle_s: float = 300.0
) -> tuple[ZygotePools, list[Any]]:
    Fake.started = 0
    retired: list[Any] = []
    pools = ZygotePools(
        lambda key: Fake(key),  # type: ignore[arg-type,return-value]
        retired.append,
        per_key=per_key,
        max_zygotes=max_zygotes,
        max_idle_bytes=max_idle_bytes,
        idle_s=idle_s,
    )
    return pools, retired


def test_a_key_gets_its_own_zygote_back_and_never_another_keys() -> None:
    pools, _ = _zygotes()
    a: Any = pools.take("a", 1.0)
    pools.give_back("a", a)
    b: Any = pools.take("b", 1.0)
    assert b is not a and b.key == "b"
    pools.give_back("b", b)
    assert pools.take("a", 1.0) is a and pools.take("b", 1.0) is b
    assert Fake.started == 2


def test_a_busy_key_hands_over_a_returned_zygote_instead_of_starting_one() -> None:
    pools, _ = _zygotes(per_key=1)
    first: Any = pools.take("a", 1.0)
    got: list[Any] = []
    waiter = threading.Thread(target=lambda: got.append(pools.take("a", 5.0)))
    waiter.start()
    time.sleep(0.1)
    assert got == []  # waiting, not starting a second zygote for the key
    pools.give_back("a", first)
    waiter.join(5)
    assert got == [first] and Fake.started == 1


def test_when_the_wait_runs_out_an_extra_zygote_starts() -> None:
    pools, _ = _zygotes(per_key=1)
    first: Any = pools.take("a", 1.0)
    extra: Any = pools.take("a", 0.05)
    assert extra is not first and Fake.started == 2


def test_past_the_cap_the_least_recently_used_idle_zygotes_of_any_key_are_retired() -> None:
    """However many keys (agents) come, at most max_zygotes are kept: the oldest idle ones go."""
    pools, retired = _zygotes(max_zygotes=3)
    for key in range(10):
        pools.give_back(key, pools.take(key, 1.0))
    assert pools.counts() == (3, 3)
    assert [z.key for z in retired] == list(range(7))
    assert [key for key, _ in pools.idle()] == [7, 8, 9]
    # Using key 7 again makes it the most recent: key 8 goes first next time.
    pools.give_back(7, pools.take(7, 1.0))
    pools.give_back(10, pools.take(10, 1.0))
    assert [key for key, _ in pools.idle()] == [9, 7, 10]


def test_idle_zygotes_hold_at_most_the_memory_cap_together() -> None:
    pools, retired = _zygotes(max_idle_bytes=25)
    for key in range(4):
        zygote: Any = pools.take(key, 1.0)
        zygote.idle_bytes = 10
        pools.give_back(key, zygote)
    assert [z.key for z in retired] == [0, 1] and pools.counts() == (2, 2)


def test_a_zygote_that_comes_back_over_the_cap_is_retired_not_kept() -> None:
    pools, retired = _zygotes(max_zygotes=1)
    a: Any = pools.take("a", 1.0)
    b: Any = pools.take("b", 1.0)  # both busy: the cap counts them but cannot retire them
    pools.give_back("a", a)
    assert retired == [a]
    pools.give_back("b", b)
    assert retired == [a] and pools.counts() == (1, 1)


def test_zygotes_idle_past_idle_s_are_retired_by_a_sweep() -> None:
    pools, retired = _zygotes(idle_s=0.05)
    old: Any = pools.take("old", 1.0)
    pools.give_back("old", old)
    time.sleep(0.1)
    fresh: Any = pools.take("fresh", 1.0)
    pools.give_back("fresh", fresh)
    pools.sweep()
    assert retired == [old] and [key for key, _ in pools.idle()] == ["fresh"]


def test_a_zygote_that_died_frees_its_place() -> None:
    pools, _ = _zygotes(per_key=1)
    pools.take("a", 1.0)
    pools.forget("a")
    started = time.monotonic()
    pools.take("a", 5.0)
    assert time.monotonic() - started < 4.0 and Fake.started == 2  # no wait for a zygote that is gone


def test_a_closed_pool_retires_its_idle_zygotes_and_those_that_come_back() -> None:
    pools, retired = _zygotes()
    idle: Any = pools.take("a", 1.0)
    busy: Any = pools.take("b", 1.0)
    pools.give_back("a", idle)
    pools.close()
    assert retired == [idle]
    pools.give_back("b", busy)
    assert retired == [idle, busy]
    with pytest.raises(ExecutionError, match="closed"):
        pools.take("a", 1.0)


def test_the_idle_zygotes_of_a_retired_template_go_now_and_its_busy_ones_after_their_call() -> None:
    """Retiring a template retires its idle zygotes of every key at once; one serving a call (no
    longer reusable) is retired when it comes back, and its place is free again."""
    pools, retired = _zygotes(per_key=1)
    old_idle: Any = pools.take("a", 1.0)
    old_busy: Any = pools.take("b", 1.0)
    other: Any = pools.take("c", 1.0)
    pools.give_back("a", old_idle)
    pools.give_back("c", other)
    for zygote in (old_idle, old_busy):
        zygote.reusable = False
    pools.retire_idle(lambda zygote: not zygote.reusable)  # type: ignore[attr-defined]
    assert retired == [old_idle]
    pools.give_back("b", old_busy)
    assert retired == [old_idle, old_busy]
    assert [key for key, _ in pools.idle()] == ["c"] and pools.counts() == (1, 1)
    assert pools.take("b", 1.0) is not old_busy


def test_pre_started_workers_are_topped_up_and_handed_out_once() -> None:
    Fake.started = 0
    spawner = ThreadPoolExecutor(2)
    pool = WorkerPool(2, Fake, spawner)  # type: ignore[arg-type]
    pool.fill()
    deadline = time.monotonic() + 5
    while pool.idle_count() < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    first, second = pool.take(refill=False), pool.take(refill=False)
    assert first is not second and Fake.started == 2
    third = pool.take(refill=False)  # none left: started for this take
    assert third not in (first, second) and Fake.started == 3
    spawner.shutdown()


def test_a_pool_of_size_zero_starts_one_per_take() -> None:
    Fake.started = 0
    spawner = ThreadPoolExecutor(2)
    pool = WorkerPool(0, Fake, spawner)  # type: ignore[arg-type]
    pool.take(refill=True)
    pool.take(refill=True)
    assert Fake.started == 2 and pool.idle_count() == 0
    spawner.shutdown()


def test_a_retired_template_forks_no_more_and_ends_once_after_its_last_zygote() -> None:
    """A template is pid 1 of its zygotes' namespace: retired while two of its zygotes live, it
    refuses new ones, and is ended (once) only when the last of them has ended."""
    import socket
    import subprocess

    from toolrt.adapters.local.workers import TemplateRetired, ZygoteTemplate

    host, other = socket.socketpair()
    template = ZygoteTemplate(subprocess.Popen(["true"]), host, namespaced=True)
    first, second = Fake(), Fake()
    template._children |= {first, second}  # type: ignore[arg-type]  # as fork_zygote leaves them
    ended: list[Any] = []
    template.drain(ended.append)
    assert template.draining and ended == []
    with pytest.raises(TemplateRetired):
        template.fork_zygote(None, None, None, timeout=1.0)
    template.release(first)  # type: ignore[arg-type]
    assert ended == []
    template.release(second)  # type: ignore[arg-type]
    template.release(second)  # type: ignore[arg-type]  # a zygote killed twice
    assert ended == [template]
    template.proc.wait()
    host.close()
    other.close()


def test_a_pool_hands_the_workers_it_no_longer_keeps_to_its_retire_function() -> None:
    """Closing a pool retires its idle workers through the sandbox's own function (which also drops
    them from what the sandbox tracks), not by killing them behind its back."""
    retired: list[Any] = []
    spawner = ThreadPoolExecutor(1)
    pool = WorkerPool(0, lambda: Fake(), spawner, retired.append)  # type: ignore[arg-type,return-value]
    pool._idle.append(Fake())  # type: ignore[arg-type]  # noqa: SLF001 - one pre-started worker
    idle = pool._idle[0]  # noqa: SLF001
    pool.close()
    assert retired == [idle] and not idle.killed  # type: ignore[attr-defined]
    spawner.shutdown()
