"""Plug-ins end to end: the example PostgreSQL plug-in (installed by `make test`) listed and
certified against real Kafka, Toxiproxy and PostgreSQL; and a broken plug-in that leaves every
command working but the one that names it."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from chaos.env.environment import Environment
from drivers.plugins import GROUP
from tests.integration.conftest import REPO, chaos_cli

pytestmark = [pytest.mark.integration, pytest.mark.timeout(1800)]
PLUGIN_KINDS = ("postgres-2pc", "postgres-batch")


def test_the_example_plugin_is_listed_and_its_rows_are_in_the_matrix() -> None:
    listing = chaos_cli("connectors")
    assert listing.returncode == 0, listing.stderr
    for kind in PLUGIN_KINDS:
        line = next(line for line in listing.stdout.splitlines() if f"│ {kind} " in line)
        assert "chaos-postgres-connec" in line, line
    matrix = chaos_cli("matrix")
    rows = [line for line in matrix.stdout.splitlines() if "postgres" in line]
    assert len(rows) == 2 and all("plug-in" in row for row in rows), matrix.stdout
    assert any("exactly once" in row and "postgres-2pc" in row for row in rows)


def test_certify_connector_certifies_the_plugin_and_kills_its_seeded_bug(environment: Environment,
                                                                        tmp_path: Path) -> None:
    state_file = Path(environment.state.workdir) / "state.json"
    proc = chaos_cli("certify", *[f"--connector={k}" for k in PLUGIN_KINDS], "--quick", "--mutants", "--jobs", "2",
                     "--env", str(state_file), "--runs-dir", str(tmp_path), timeout=1800)
    (directory,) = tmp_path.glob("certification-*")
    report = json.loads((directory / "certification.json").read_text())
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert {r["row"] for r in report["rows"]} == {"kafka-transactional-to-postgres-2pc",
                                                  "postgres-batch-to-parquet-2pc"}
    labels = {c["name"]: c for c in report["connectors"] if c["name"] in PLUGIN_KINDS}
    assert {name: c["computed"] for name, c in labels.items()} == {k: "Certified" for k in PLUGIN_KINDS}
    assert report["mutants"]["kill_rate"] == 1.0 and report["mutants"]["total"] == 1
    (bug,) = report["mutants"]["results"]
    assert (bug["mutant"], bug["status"], bug["control"]["status"]) == ("rollback-all-on-recover", "killed", "pass")


@pytest.fixture
def broken_plugin(tmp_path: Path) -> dict[str, str]:
    """A distribution whose module fails to import, on the PYTHONPATH of the commands run."""
    info = tmp_path / "chaos_broken-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: chaos-broken\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[{GROUP}]\nbroken-sink = chaos_broken:SINK\n")
    (tmp_path / "chaos_broken.py").write_text("raise ImportError('this plug-in is broken on purpose')\n")
    return {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(tmp_path), os.environ.get("PYTHONPATH")]))}


def test_a_broken_plugin_leaves_every_command_working_but_the_one_that_names_it(
        broken_plugin: dict[str, str], environment: Environment, tmp_path: Path) -> None:
    warning = "plug-in chaos-broken 0.1, entry point 'broken-sink' in chaos.connectors: cannot import"
    quickstart = str(REPO / "experiments" / "quickstart.yaml")
    state_file = str(Path(environment.state.workdir) / "state.json")
    for args in (["validate", quickstart], ["matrix"], ["certify", "--plan"],
                 ["run", quickstart, "--env", state_file, "--runs-dir", str(tmp_path / "runs")]):
        proc = chaos_cli(*args, env=broken_plugin)
        assert proc.returncode == 0, (args, proc.stdout, proc.stderr)
        assert warning in " ".join(proc.stderr.split()), (args, proc.stderr)
        assert "Traceback" not in proc.stderr
    listing = chaos_cli("connectors", env=broken_plugin)
    assert listing.returncode == 0 and "left out" in listing.stdout and "broken on purpose" in listing.stdout

    named = tmp_path / "broken.yaml"
    named.write_text((REPO / "experiments" / "quickstart.yaml").read_text().replace("sink: parquet\n",
                                                                                     "sink: broken-sink\n"))
    refused = chaos_cli("validate", str(named), env=broken_plugin)
    assert refused.returncode == 2 and "comes from a plug-in that could not be loaded" in refused.stderr
    assert "broken on purpose" in " ".join(refused.stderr.split()) and "Traceback" not in refused.stderr
    certify = chaos_cli("certify", "--connector", "broken-sink", env=broken_plugin)
    assert certify.returncode == 2 and "could not be loaded" in certify.stderr
