"""The README and the guides in docs/ are executed: every Python and shell block runs, as written, in an empty folder.

A block runs against the installed package (this run's virtualenv: its ``bin`` comes first on
``PATH``), each in a folder of its own with no ``TOOLRT_*`` variable set. Python blocks run with
the virtualenv's interpreter; a block whose functions are pytest tests (the plugin's example) runs
under pytest. Shell blocks run with ``bash -e``, so every command must succeed; whatever a block
starts in the background is stopped with it. Two HTML comments, on the line before a block, change
what happens (the reader does not see them):

- ``<!-- readme-test: skip REASON -->``: the block does not run (a reason is required), for
  instance because it needs an AWS account or installs from the package index;
- ``<!-- readme-test: setup ... -->``: code run first, in the same process, for a block that
  continues from what the text before it set up (``rt``, a ``definition``).
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
from pathlib import Path

import attrs
import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
GUIDES = sorted((ROOT / "docs").glob("*.md"))
DOCUMENTS = [README, *GUIDES]
BIN = Path(sys.executable).parent
_FENCE = re.compile(r"^```(\w*)\s*$")
_DIRECTIVE = re.compile(r"<!--\s*readme-test:\s*(skip|setup)\b(.*?)-->", re.S)
_RUN = ("python", "sh", "bash")


@attrs.frozen
class Block:
    """A fenced block of the README and the directive written before it."""

    line: int
    language: str
    code: str
    skip: str | None = None
    setup: str = ""
    document: str = "README.md"

    @property
    def name(self) -> str:
        first = next((line for line in self.code.splitlines() if line.strip()), "")
        shown = re.sub(r"[^A-Za-z0-9]+", "_", first)[:30].strip("_")
        return f"{Path(self.document).stem}-line{self.line}-{self.language}-{shown}"

    @property
    def where(self) -> str:
        return f"{self.document} line {self.line}"


def readme_blocks(text: str, document: str = "README.md") -> list[Block]:
    """Every fenced block of ``text`` (the contents of ``document``) with its directive, in order."""
    lines = text.splitlines()
    blocks: list[Block] = []
    index = 0
    while index < len(lines):
        fence = _FENCE.match(lines[index])
        if not fence:
            index += 1
            continue
        end = next(i for i in range(index + 1, len(lines)) if lines[i].startswith("```"))
        before = "\n".join(lines[:index]).rstrip()
        skip, setup = None, ""
        directive = _DIRECTIVE.search(before[before.rfind("<!--") :]) if before.endswith("-->") else None
        if directive is not None:
            kind, body = directive.group(1), directive.group(2)
            if kind == "skip":
                skip = body.strip()
                assert skip, f"{document} line {index + 1}: a skipped block says why"
            else:
                setup = body.strip("\n")
        code = "\n".join(lines[index + 1 : end]) + "\n"
        blocks.append(Block(index + 1, fence.group(1), code, skip, setup, document))
        index = end + 1
    return blocks


BLOCKS = [
    block
    for document in DOCUMENTS
    for block in readme_blocks(document.read_text(encoding="utf-8"), str(document.relative_to(ROOT)))
    if block.language in _RUN
]


def test_the_readme_has_runnable_blocks_and_every_skip_says_why() -> None:
    """The parser finds the blocks of the README and the guides; most run, and each one that does not gives a reason."""
    assert len(BLOCKS) >= 15
    assert sum(1 for b in BLOCKS if b.skip is None) >= len(BLOCKS) * 2 // 3
    assert all(b.skip for b in BLOCKS if b.skip is not None)
    assert any(b.document == "README.md" and b.skip is None and b.language == "python" for b in BLOCKS)


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """The anchor GitHub gives a heading: lower case, punctuation dropped, spaces as hyphens."""
    return re.sub(r"[^\w\- ]", "", heading.strip().lower()).replace(" ", "-")


def _anchors(document: Path) -> set[str]:
    text = re.sub(r"^```.*?^```", "", document.read_text(encoding="utf-8"), flags=re.S | re.M)
    return {_anchor(m.group(1)) for m in re.finditer(r"^#{1,6} (.+)$", text, re.M)}


def test_every_guide_is_linked_from_the_readme() -> None:
    """A reader of the README finds every guide in docs/ (and the changelog) from it."""
    linked = {target.split("#")[0] for target in _LINK.findall(README.read_text(encoding="utf-8"))}
    assert GUIDES, "docs/ holds the guides"
    missing = [f"docs/{g.name}" for g in GUIDES if f"docs/{g.name}" not in linked]
    assert not missing, f"README.md links to no {missing}"
    assert "CHANGELOG.md" in linked


@pytest.mark.parametrize("document", [*DOCUMENTS, ROOT / "CHANGELOG.md"], ids=lambda d: d.name)
def test_every_link_between_documents_reaches_its_file_and_heading(document: Path) -> None:
    """A relative link in the README, a guide or the changelog names a file that exists, and a heading in it."""
    text = re.sub(r"^```.*?^```", "", document.read_text(encoding="utf-8"), flags=re.S | re.M)
    broken = []
    for target in _LINK.findall(text):
        if re.match(r"[a-z]+:", target):
            continue  # an address on the web, not a file of the repository
        path, _, fragment = target.partition("#")
        linked = (document.parent / path).resolve() if path else document
        if not linked.exists():
            broken.append(f"{target}: no such file")
        elif fragment and linked.suffix == ".md" and fragment not in _anchors(linked):
            broken.append(f"{target}: no heading #{fragment} in {linked.name}")
    assert not broken, f"{document.name}: {broken}"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TOOLRT_", "AWS_", "PYTEST_"))}
    env["PATH"] = f"{BIN}:{env.get('PATH', '/usr/bin:/bin')}"
    env["XDG_CACHE_HOME"] = str(home / "cache")
    env["XDG_DATA_HOME"] = str(home / "data")
    env["MOTO_PORT"] = str(_free_port())  # the moto walk-through's server, on a port of its own
    return env


@pytest.mark.slow
@pytest.mark.timeout(900)
@pytest.mark.parametrize("block", BLOCKS, ids=[b.name for b in BLOCKS])
def test_readme_block_runs_as_written(block: Block, tmp_path: Path) -> None:
    """The block runs in an empty folder against the installed toolrt and succeeds."""
    if block.skip is not None:
        pytest.skip(f"{block.where}: {block.skip}")
    work = tmp_path / "work"
    work.mkdir()
    env = _environment(tmp_path)
    if block.language == "python":
        source = f"{block.setup}\n{block.code}" if block.setup else block.code
        if re.search(r"^def test_", block.code, re.M):
            (work / "test_readme_block.py").write_text(source)
            argv = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "test_readme_block.py"]
        else:
            (work / "block.py").write_text(source)
            argv = [sys.executable, "block.py"]
    else:
        argv = ["bash", "-e", "-c", f"{block.setup}\n{block.code}" if block.setup else block.code]
    log = tmp_path / "output.txt"
    with log.open("w") as output:  # a file, not a pipe: a server the block left running keeps no pipe open
        process = subprocess.Popen(
            argv,
            cwd=work,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # one process group: what the block starts in the background ends with it
        )
        try:
            process.wait(timeout=800)
        finally:
            try:
                os.killpg(process.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            process.wait()
    out = log.read_text(errors="replace")
    assert process.returncode == 0, f"{block.where} failed:\n{out[-6000:]}"
