"""`chaos validate` on any input: exit 0 or 2 with a message that names the problem, never a
traceback. Hypothesis mutates real experiments (a value replaced, a key dropped or misspelt) and also
feeds raw text and bytes, thousands of documents per run."""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.console import Console

from chaos.commands.run import validate
from chaos.errors import EXIT_INVALID, EXIT_OK

ROOT = Path(__file__).resolve().parents[2]
SEEDS = [ROOT / "experiments" / name for name in (
    "quickstart.yaml", "rows/kafka-transactional-to-parquet-2pc.yaml", "rows/memory-to-memory.yaml",
    "mutants/drop-late.yaml", "certification/kafka-to-parquet/source-reconnect.yaml")]
PROBLEM = re.compile(r"^(line \d+: )?\S")
"""A problem line starts with its line, when the file has one, then names the field or the file's flaw."""
FUZZ = settings(max_examples=1500, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

scalars = st.one_of(st.none(), st.booleans(), st.integers(min_value=-(2**70), max_value=2**70),
                    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=20),
                    st.sampled_from(["1s", "-3s", "500ms", "0", "kafka", "crash", "worker-0", "sink.prepare.after"]))
values = st.recursive(scalars, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                       st.dictionaries(st.text(max_size=12), inner, max_size=4)),
                      max_leaves=12)


def _documents() -> list[dict[str, Any]]:
    return [yaml.safe_load(path.read_text()) for path in SEEDS]


def _places(node: Any, path: tuple = ()) -> list[tuple]:
    """Every path to a value in the document, the document itself included."""
    places = [path]
    if isinstance(node, dict):
        for key, value in node.items():
            places += _places(value, (*path, key))
    elif isinstance(node, list):
        for index, value in enumerate(node):
            places += _places(value, (*path, index))
    return places


@st.composite
def mutated(draw: st.DrawFn) -> dict[str, Any]:
    """A real experiment with a few edits, each at a place in it: replace, drop, or rename a key."""
    document = draw(st.sampled_from(_documents()))
    for _ in range(draw(st.integers(1, 3))):
        place = draw(st.sampled_from(_places(document)))
        if not place:
            continue
        parent = document
        for key in place[:-1]:
            parent = parent[key]
        last = place[-1]
        action = draw(st.sampled_from(["replace", "drop", "rename"]))
        if action == "replace":
            parent[last] = draw(values)
        elif action == "drop":
            del parent[last]
        elif isinstance(parent, dict):
            parent[draw(st.text(min_size=1, max_size=12)) + str(last)] = parent.pop(last)
    return document


def _validate(tmp_path: Path, content: bytes) -> tuple[int, str]:
    path = tmp_path / "experiment.yaml"
    path.write_bytes(content)
    out, err = io.StringIO(), io.StringIO()
    code = validate([path], True, Console(file=out, width=200), Console(file=err, width=10_000))
    return code, err.getvalue()


def _assert_clear(code: int, errors: str) -> None:
    assert code in (EXIT_OK, EXIT_INVALID)
    if code == EXIT_INVALID:
        lines = errors.strip().splitlines()
        assert lines, "exit 2 with nothing said"
        for line in lines:
            prefix, _, problem = line.partition(": ")
            assert prefix.endswith("experiment.yaml") and PROBLEM.match(problem), line
    else:
        assert errors == ""


@FUZZ
@given(document=mutated())
def test_a_mutated_experiment_is_valid_or_refused_with_its_field_named(tmp_path_factory, document):
    tmp_path = tmp_path_factory.mktemp("mutated")
    code, errors = _validate(tmp_path, yaml.safe_dump(document, allow_unicode=True).encode())
    _assert_clear(code, errors)


@FUZZ
@given(content=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode)))
def test_any_bytes_are_valid_or_refused_with_a_message(tmp_path_factory, content):
    tmp_path = tmp_path_factory.mktemp("raw")
    _assert_clear(*_validate(tmp_path, content))


@pytest.mark.parametrize(("content", "problem"), [
    (b"name: \xff\xfe\n", "line 1: the file is not UTF-8 text (byte 0xff at offset 6)"),
    (b"a: " + b"[" * 3000 + b"]" * 3000, "line 1: nested more than 32 levels deep"),
    (b"seed: 1\nx: &a [1,1,1,1,1,1,1,1,1,1]\n" + b"".join(
        b"x%d: &a%d [%s]\n" % (level, level, b",".join([b"*a" if level == 1 else b"*a%d" % (level - 1)] * 10))
        for level in range(1, 7)), "the document expands to more than 100000 values"),
    (b"x" * (2 << 20), "the file is over 1024 KiB"),
])
def test_hostile_files_are_refused_before_they_are_parsed(tmp_path, content, problem):
    code, errors = _validate(tmp_path, content)
    assert code == EXIT_INVALID
    assert problem in errors
