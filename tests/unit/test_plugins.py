"""Plug-in discovery: a valid kind joins the table, a broken one is left out with one clear line.

Plug-ins are found through entry points, so each test installs a small distribution for real: a
`.dist-info` directory (the metadata pip writes) and a module, on a temporary path entry.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from drivers.connectors import KINDS
from drivers.plugins import GROUP, discover, kind_problem
from drivers.sdk import Capabilities, Connector, Maturity

GOOD = '''
from drivers.sdk import Capabilities, Connector, Maturity
SINK = Connector("toy-sink", "sink", "Toy", Capabilities(), Maturity.PREVIEW, "toy:Sink", "toy:Side")
CLASH = Connector("parquet", "sink", "Another Parquet", Capabilities(), Maturity.PREVIEW, "toy:Sink", "toy:Side")
BAD = Connector("bad-sink", "sink", "Bad", Capabilities(replayable=True), Maturity.PREVIEW, "toy:Sink", "toy:Side")
'''


def install(root: Path, name: str, entries: dict[str, str], module: str | None = None) -> None:
    info = root / f"{name.replace('-', '_')}-0.1.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\n" + "".join(f"{k} = {v}\n" for k, v in entries.items()))
    if module is not None:
        (root / f"{name.replace('-', '_')}.py").write_text(module)


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for module in [m for m in sys.modules if m.startswith("toy_")]:
        del sys.modules[module]


def test_a_valid_plugin_kind_joins_and_a_broken_one_is_left_out_with_its_reason(site: Path) -> None:
    install(site, "toy-good", {"toy-sink": "toy_good:SINK", "parquet": "toy_good:CLASH",
                               "bad-sink": "toy_good:BAD"}, GOOD)
    install(site, "toy-broken", {"toy-broken-sink": "toy_broken:SINK"}, "import no_such_module\n")
    found = discover(KINDS)
    names = {(kind.name, str(origin)) for kind, origin in found.kinds}
    assert ("toy-sink", "toy-good 0.1") in names
    problems = {p.entry: str(p) for p in found.problems}
    assert "toy-broken 0.1" in problems["toy-broken-sink"]
    assert "No module named 'no_such_module'" in problems["toy-broken-sink"]
    assert "already provided by built in" in problems["parquet"]
    assert "a sink cannot claim replayable" in problems["bad-sink"]


@pytest.mark.parametrize("kind, problem", [
    ("not a connector", "str is not a drivers.sdk.Connector"),
    (Connector("k", "sideways", "K", Capabilities(), Maturity.PREVIEW, "m:D", "m:H"), "neither 'source' nor 'sink'"),
    (Connector("k", "source", "K", Capabilities(two_phase=True), Maturity.PREVIEW, "m:D", "m:H"),
     "a source cannot claim two_phase"),
    (Connector("k", "sink", "K", Capabilities(), "Certified", "m:D", "m:H"), "maturity must be"),  # type: ignore[arg-type]
    (Connector("k", "sink", "K", Capabilities(), Maturity.PREVIEW, "m.D", "m:H"), "driver must be an import path"),
    (Connector("k", "sink", "K", Capabilities(), Maturity.PREVIEW, "m:D", "m:H", crash_points=("sink.explode",)),
     "unknown crash points"),
    (Connector("k", "sink", "K", Capabilities(), Maturity.PREVIEW, "m:D", "m:H",
               crash_points=("coordinator.commit.mid",)), "unknown crash points"),
    (Connector("k", "sink", "K", Capabilities(), Maturity.PREVIEW, "m:D", "m:H", links=("worker-mars",)),
     "unknown links"),
])
def test_every_kind_problem_is_named(kind: object, problem: str) -> None:
    found = kind_problem(kind)
    assert found is not None and problem in found


def test_a_valid_kind_has_no_problem() -> None:
    assert all(kind_problem(kind) is None for kind in KINDS)
