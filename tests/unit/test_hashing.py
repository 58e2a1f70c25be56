"""Properties of content addressing: what changes the hash and what does not."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from toolrt.domain import CodeHash, normalize_code

code_lines = st.lists(
    st.text(alphabet=st.characters(exclude_characters="\r\n", exclude_categories=["Cs"]), max_size=30),
    min_size=1,
    max_size=12,
)


@given(code_lines)
def test_line_endings_do_not_change_the_hash(lines: list[str]) -> None:
    """The same code with LF, CRLF or CR line endings has one hash."""
    lf = "\n".join(lines)
    assert (
        CodeHash.of("python", lf)
        == CodeHash.of("python", "\r\n".join(lines))
        == CodeHash.of("python", "\r".join(lines))
    )


@given(code_lines, st.lists(st.sampled_from([" ", "\t", "  "]), min_size=1, max_size=12))
def test_trailing_whitespace_and_outer_blank_lines_do_not_change_the_hash(lines: list[str], pads: list[str]) -> None:
    """Trailing whitespace on any line and blank lines around the code are ignored."""
    padded = [line + pads[i % len(pads)] for i, line in enumerate(lines)]
    assert CodeHash.of("python", "\n".join(lines)) == CodeHash.of("python", "\n \n" + "\n".join(padded) + "\n\n\t\n")


@given(st.text(max_size=200), st.text(max_size=200))
def test_different_code_gives_different_hashes(a: str, b: str) -> None:
    """Code that differs after normalization never shares a hash."""
    if normalize_code(a) != normalize_code(b):
        assert CodeHash.of("python", a) != CodeHash.of("python", b)


@given(st.text(max_size=200))
def test_language_is_part_of_the_address(code: str) -> None:
    """The same text in two languages is two artifacts."""
    assert CodeHash.of("javascript", code) != CodeHash.of("typescript", code)


@given(st.text(max_size=300))
def test_normalization_is_idempotent(code: str) -> None:
    """Normalizing twice changes nothing more."""
    once = normalize_code(code)
    assert normalize_code(once) == once


def test_indentation_is_kept() -> None:
    """Leading whitespace is meaningful in Python and changes the hash."""
    assert CodeHash.of("python", "def f():\n    return 1") != CodeHash.of("python", "def f():\n  return 1")


def test_known_value() -> None:
    """The hash is sha256 of 'language:normalized code' (a stable, documented address)."""
    import hashlib

    assert CodeHash.of("python", "x = 1  \r\n").value == hashlib.sha256(b"python:x = 1").hexdigest()
