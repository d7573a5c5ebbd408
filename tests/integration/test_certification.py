"""`chaos certify --quick --mutants --jobs 2`, end to end on the session's environment (and a second
one that the suite starts for its second lane): what CI runs.

The suite runs once for the module; each case and each mutant is then its own test, so a failure
names the row and the scenario. Run these alone with `pytest -m certification`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from chaos.certification.mutants import MUTANTS
from chaos.certification.plan import plan
from chaos.certification.scenarios import certification_rows, slug
from chaos.env.environment import Environment
from tests.integration.conftest import chaos_cli

pytestmark = [pytest.mark.integration, pytest.mark.certification,
              pytest.mark.timeout(3600)]  # the first test's setup runs the whole suite (about 7 min here)

CASES = plan([r for r in certification_rows() if not r.plugin], quick=True)  # ours; plug-ins: test_plugins.py


@pytest.fixture(scope="module")
def certification(environment: Environment, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    runs = tmp_path_factory.mktemp("certification")
    state_file = Path(environment.state.workdir) / "state.json"
    proc = chaos_cli("certify", "--quick", "--mutants", "--jobs", "2", "--env", str(state_file),
                     "--runs-dir", str(runs), timeout=3600)
    (directory,) = runs.glob("certification-*")
    report = json.loads((directory / "certification.json").read_text())
    return {"code": proc.returncode, "output": proc.stdout + proc.stderr, "report": report, "directory": directory}


def _scenario(report: dict[str, Any], row: str, scenario: str) -> dict[str, Any]:
    entry = next(r for r in report["rows"] if r["row"] == row)
    return next(s for s in entry["scenarios"] if s["scenario"] == scenario)


def test_certify_quick_passes_and_writes_its_reports(certification):
    assert certification["code"] == 0, certification["output"]
    report = certification["report"]
    assert report["status"] == "pass" and report["mode"] == "quick" and report["errors"] == []
    for name in ("certification.md", "certification.html"):
        assert (certification["directory"] / name).read_text().count("kafka-transactional-to-parquet-2pc") >= 1


@pytest.mark.parametrize("case", CASES, ids=lambda c: c.id.split("@")[0])
def test_scenario_passes(certification, case):
    scenario = _scenario(certification["report"], slug(case.row), case.scenario.slug)
    (run,) = scenario["runs"]
    assert scenario["status"] == "pass", run
    result = json.loads((certification["directory"] / run["run_dir"] / "result.json").read_text())
    assert result["status"] == "pass" and result["seed"] == case.seed


@pytest.mark.parametrize("mutant", MUTANTS, ids=lambda m: m.name)
def test_mutant_is_killed_by_its_checker(certification, mutant):
    result = next(r for r in certification["report"]["mutants"]["results"] if r["mutant"] == mutant.name)
    assert result["status"] == "killed", result
    assert mutant.caught_by in result["failed"]


def test_every_connector_labelled_certified_is_certified_by_the_suite(certification):
    for connector in certification["report"]["connectors"]:
        if connector["declared"] == "Certified":
            assert connector["computed"] == "Certified", connector
    assert certification["report"]["mutants"]["kill_rate"] == 1.0
