"""One cache limit for Python and Node environments together, least recently used first."""

from __future__ import annotations

import os
from pathlib import Path

from toolrt.adapters.local.environments import LocalEnvironments

MB = 2**20


def _environment(root: Path, ecosystem: str, content: str, digit: str, size: int, age_s: int) -> str:
    digest = digit * 64
    folder = root / ecosystem / digest
    (folder / content).mkdir(parents=True)
    (folder / content / "payload").write_bytes(b"\0" * size)
    when = 1_700_000_000 - age_s
    os.utime(folder, (when, when))
    return digest


def _world(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    root = tmp_path / "environments"
    made = {
        "oldest_node": _environment(root, "node", "node_modules", "1", MB, 400),
        "old_python": _environment(root, "python", "site", "2", MB, 300),
        "new_node": _environment(root, "node", "node_modules", "3", MB, 200),
        "newest_python": _environment(root, "python", "site", "4", MB, 100),
    }
    return root, made


def test_a_build_evicts_the_least_recently_used_of_either_ecosystem(tmp_path: Path) -> None:
    """4 MB in all under a 2.5 MB limit: after a Python build, the oldest Node and the older Python
    environments go, whatever ecosystem built last."""
    root, made = _world(tmp_path)
    envs = LocalEnvironments(root, cache_bytes=int(2.5 * MB))
    envs.python._evict_over_cache(keep=made["newest_python"])
    left = {e.digest for e in envs.environments()}
    assert left == {made["new_node"], made["newest_python"]}


def test_the_environment_just_built_is_kept_even_when_it_is_the_oldest(tmp_path: Path) -> None:
    root, made = _world(tmp_path)
    envs = LocalEnvironments(root, cache_bytes=int(1.5 * MB))
    envs.node._evict_over_cache(keep=made["oldest_node"])
    assert {e.digest for e in envs.environments()} == {made["oldest_node"]}


def test_prune_holds_both_ecosystems_together_under_max_bytes(tmp_path: Path) -> None:
    root, made = _world(tmp_path)
    envs = LocalEnvironments(root)
    everything = set(made.values())
    report = envs.prune(keep=everything, max_bytes=int(2.5 * MB), dry_run=True)
    assert report.removed == (made["oldest_node"], made["old_python"]) and len(envs.environments()) == 4
    report = envs.prune(keep=everything - {made["new_node"]}, max_bytes=int(1.5 * MB))
    assert set(report.removed) == {made["new_node"], made["oldest_node"], made["old_python"]}
    assert [e.digest for e in envs.environments()] == [made["newest_python"]]
