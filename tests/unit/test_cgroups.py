"""The per-call memory budget's bookkeeping on cgroup v1 and v2 trees (fake trees: plain files)."""

from __future__ import annotations

from pathlib import Path

import pytest

from toolrt.adapters.local.cgroups import detect

V1_SELF = "12:pids:/svc\n4:memory:/svc/unit\n0::/\n"


def _v1_tree(root: Path) -> None:
    (root / "memory" / "svc" / "unit").mkdir(parents=True)
    (root / "pids" / "svc").mkdir(parents=True)


def _fill_v1_worker(folder: Path, usage: int, peak: int, oom_kills: int, cache: int = 0) -> None:
    (folder / "memory.usage_in_bytes").write_text(f"{usage}\n")
    shmem = 1 << 20  # tmpfs pages are not page cache: never counted as reclaimable
    (folder / "memory.stat").write_text(
        f"cache {cache + shmem}\nrss {usage - cache - shmem}\nshmem {shmem}\n"
        f"inactive_anon {shmem}\nactive_anon 0\ninactive_file {cache // 2}\nactive_file {cache - cache // 2}\n"
    )
    (folder / "memory.max_usage_in_bytes").write_text(f"{peak}\n")
    (folder / "memory.oom_control").write_text(f"oom_kill_disable 0\nunder_oom 0\noom_kill {oom_kills}\n")


def test_v1_groups_nest_under_this_process_own_groups(tmp_path: Path) -> None:
    """On v1, a sandbox's groups sit under toolrt's own memory and pids groups, so limits on toolrt still apply."""
    _v1_tree(tmp_path)
    groups, why = detect(tmp_path, V1_SELF)
    assert groups is not None, why
    assert groups.version == 1
    assert groups.memory_parent.parent == tmp_path / "memory" / "svc" / "unit"
    assert groups.pids_parent.parent == tmp_path / "pids" / "svc"
    worker = groups.worker()
    assert worker.memory_dir.is_dir() and worker.pids_dir.is_dir()


def test_v1_arm_sets_the_limit_above_the_idle_usage_and_settle_reports_the_call_peak(tmp_path: Path) -> None:
    """The limit is idle usage plus the call's budget; the reported peak excludes what the idle worker held."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    worker = groups.worker()
    _fill_v1_worker(worker.memory_dir, usage=10 << 20, peak=99 << 20, oom_kills=2)
    budget = worker.arm(128 << 20, 70)
    assert int((worker.memory_dir / "memory.limit_in_bytes").read_text()) == (10 + 128) << 20
    assert (worker.pids_dir / "pids.max").read_text() == "70"
    assert (worker.memory_dir / "memory.max_usage_in_bytes").read_text() == "0"  # the peak was reset
    _fill_v1_worker(worker.memory_dir, usage=12 << 20, peak=74 << 20, oom_kills=2)
    assert worker.settle(budget) == ((64 << 20) // 1024, False)
    _fill_v1_worker(worker.memory_dir, usage=12 << 20, peak=74 << 20, oom_kills=3)
    assert worker.settle(budget)[1] is True


def test_page_cache_an_earlier_call_left_never_raises_the_next_calls_budget(tmp_path: Path) -> None:
    """Files a call read stay cached and charged to the zygote's cgroup, but the kernel reclaims them
    under the limit: the next call's limit is the idle memory without them plus its budget, so it
    gets its memory_mb and no more, however much was cached before it."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    worker = groups.worker()
    for cached in (0, 50 << 20, 300 << 20):
        _fill_v1_worker(worker.memory_dir, usage=(10 << 20) + cached, peak=0, oom_kills=0, cache=cached)
        budget = worker.arm(64 << 20, 70)
        assert int((worker.memory_dir / "memory.limit_in_bytes").read_text()) == (10 + 64) << 20
        assert budget.baseline == (10 << 20) + cached  # what the call's reported peak is measured from


def test_procs_files_let_a_process_move_itself_into_the_group(tmp_path: Path) -> None:
    """One write-only descriptor per hierarchy's cgroup.procs, handed to a new zygote (it writes 0)."""
    import os

    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    worker = groups.worker()
    for folder in (worker.memory_dir, worker.pids_dir):
        (folder / "cgroup.procs").write_text("")
    fds = worker.procs_files()
    try:
        assert len(fds) == 2
        for fd in fds:
            os.write(fd, b"0")
    finally:
        for fd in fds:
            os.close(fd)
    assert (worker.memory_dir / "cgroup.procs").read_text() == "0"
    assert (worker.pids_dir / "cgroup.procs").read_text() == "0"


def test_v1_attach_writes_each_pid_to_both_hierarchies(tmp_path: Path) -> None:
    """A worker's processes are moved into its memory group and its pids group."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    worker = groups.worker()
    worker.attach([4242])
    assert (worker.memory_dir / "cgroup.procs").read_text() == "4242"
    assert (worker.pids_dir / "cgroup.procs").read_text() == "4242"


def test_v2_enables_the_controllers_it_needs_and_uses_one_directory(tmp_path: Path) -> None:
    """On v2, memory and pids are enabled below the root and each worker is one directory."""
    (tmp_path / "cgroup.controllers").write_text("cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("cpu\n")
    groups, why = detect(tmp_path, "0::/\n")
    assert groups is not None, why
    assert groups.version == 2
    assert (tmp_path / "cgroup.subtree_control").read_text() == "+memory +pids"
    assert (groups.memory_parent / "cgroup.subtree_control").read_text() == "+memory +pids"
    worker = groups.worker()
    assert worker.memory_dir == worker.pids_dir
    (worker.memory_dir / "memory.current").write_text("1048576\n")
    (worker.memory_dir / "memory.peak").write_text("1048576\n")
    (worker.memory_dir / "memory.events").write_text("low 0\nhigh 0\nmax 3\noom 1\noom_kill 1\n")
    budget = worker.arm(64 << 20, 80)
    assert int((worker.memory_dir / "memory.max").read_text()) == (1 << 20) + (64 << 20)
    (worker.memory_dir / "memory.events").write_text("low 0\nhigh 0\nmax 9\noom 2\noom_kill 2\n")
    # The fake file was rewritten through the kept descriptor ("0"): the call's peak reads as 0 here.
    peak_kb, oom = worker.settle(budget)
    assert oom is True and peak_kb == 0


def test_no_controllers_means_no_budget_and_a_reason(tmp_path: Path) -> None:
    """Where neither v2 nor v1 controllers exist, detection says why instead of failing later."""
    groups, why = detect(tmp_path, "0::/\n")
    assert groups is None
    assert "no cgroup" in why


def test_switched_off_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """TOOLRT_CGROUPS=0 turns the per-call cgroup off even where it would work."""
    _v1_tree(tmp_path)
    monkeypatch.setenv("TOOLRT_CGROUPS", "0")
    groups, why = detect(tmp_path, V1_SELF)
    assert groups is None and "TOOLRT_CGROUPS" in why


def test_the_files_read_on_every_call_are_opened_once_and_closed_with_the_group(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Usage, page cache and OOM events are read through descriptors kept from the first call: a later call
    opens only what it writes (the v1 peak reset), and removing the group closes them."""
    import os

    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    worker = groups.worker()
    _fill_v1_worker(worker.memory_dir, usage=10 << 20, peak=0, oom_kills=0)
    worker.settle(worker.arm(128 << 20, 70))
    opened: list[str] = []
    real_open = os.open

    def spy(path: str, *args: int) -> int:
        opened.append(os.path.basename(path))
        return real_open(path, *args)

    monkeypatch.setattr(os, "open", spy)  # the os module cgroups uses
    _fill_v1_worker(worker.memory_dir, usage=11 << 20, peak=20 << 20, oom_kills=1)
    budget = worker.arm(128 << 20, 70)
    assert budget.baseline == 11 << 20
    (worker.memory_dir / "memory.max_usage_in_bytes").write_text(f"{40 << 20}\n")
    (worker.memory_dir / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 2\n")
    assert worker.settle(budget) == ((29 << 20) // 1024, True)
    assert sorted(set(opened)) == ["memory.max_usage_in_bytes"]  # reset and read; usage, stat, events: kept
    kept = {fd: (os.fstat(fd).st_dev, os.fstat(fd).st_ino) for fd in worker._fds.values()}
    assert kept
    worker.remove()
    for fd, identity in kept.items():
        # Closed: the number is free, or another thread of this process has opened something else on it.
        try:
            reused = os.fstat(fd)
        except OSError:
            continue
        assert (reused.st_dev, reused.st_ino) != identity


def test_an_empty_worker_group_is_kept_for_the_next_worker(tmp_path: Path) -> None:
    """A memory cgroup is slow to create and to free: once its worker is gone, the group is handed
    to the next worker (limits set again); one a process is still in is not."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    first = groups.worker()
    for folder in (first.memory_dir, first.pids_dir):
        (folder / "cgroup.procs").write_text("")
    first.set_limits(64 << 20, 70)
    first.remove()
    assert first.memory_dir.is_dir()  # kept, not deleted
    again = groups.worker()
    assert again is first and again._limit is None  # noqa: SLF001 - its limits are set anew
    (again.memory_dir / "cgroup.procs").write_text("4242\n")
    again.remove()  # not empty: not kept (a process still in it would follow it to the next worker)
    assert groups.worker() is not first


def test_a_kept_group_starts_its_next_worker_with_no_peak_and_no_oom_kill(tmp_path: Path) -> None:
    """A kept group goes to the next worker of any agent: that worker's peak and OOM kills are its
    own, not the last worker's (a Node worker reports both for its one call)."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    first = groups.worker()
    for folder in (first.memory_dir, first.pids_dir):
        (folder / "cgroup.procs").write_text("")
    _fill_v1_worker(first.memory_dir, usage=300 << 20, peak=300 << 20, oom_kills=3)
    assert first.oom_killed() and first.peak_kb() == 300 << 10
    first.remove()
    again = groups.worker()
    assert again is first
    assert (again.memory_dir / "memory.max_usage_in_bytes").read_text() == "0"  # the peak was reset
    assert not again.oom_killed() and again.peak_kb() == 0
    (again.memory_dir / "memory.oom_control").write_text("oom_kill_disable 0\nunder_oom 0\noom_kill 4\n")
    assert again.oom_killed()


def test_a_kept_group_whose_peak_cannot_be_reset_is_not_handed_out_again(tmp_path: Path) -> None:
    """Where the kernel refuses to reset the peak, a kept group would show its last worker's: a new
    group is made instead."""
    _v1_tree(tmp_path)
    groups, _ = detect(tmp_path, V1_SELF)
    assert groups is not None
    first = groups.worker()
    for folder in (first.memory_dir, first.pids_dir):
        (folder / "cgroup.procs").write_text("")
    _fill_v1_worker(first.memory_dir, usage=1 << 20, peak=300 << 20, oom_kills=0)
    first.remove()
    (first.memory_dir / "memory.max_usage_in_bytes").unlink()
    (first.memory_dir / "memory.max_usage_in_bytes").mkdir()  # a write fails even as root
    assert groups.worker() is not first
