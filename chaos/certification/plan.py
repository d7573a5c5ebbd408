"""Which runs a certification makes: one case per applicable (row, scenario) and seed.

Each case's experiment comes from its row and scenario (`chaos.certification.experiments`); ours
are also committed under `experiments/certification/<row>/<scenario>.yaml`. `--quick` runs each
once at half the size (half the records at half the rate, so every fault still lands mid-stream);
the full suite runs each with three seeds at the size written, and runs the Kafka rows' source
reconnect and two-phase commit cases once more on a three-broker cluster (`CLUSTER_SCENARIOS`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from chaos.certification.experiments import experiment
from chaos.certification.experiments import seed as experiment_seed
from chaos.certification.scenarios import SCENARIOS, Scenario, Status, applicability, slug
from chaos.matrix import Row

REPO = Path(__file__).resolve().parents[2]
CERTIFICATION_DIR = REPO / "experiments" / "certification"
FULL_SEEDS = 3
QUICK_SCALE = 0.5
CLUSTER_SOURCES = ("kafka", "kafka-transactional")
CLUSTER_SCENARIOS = (1, 4)
"""The scenarios whose cases the full suite also runs on a cluster, for the rows that read Kafka:
a connection lost to a broker among three, and a commit across a transaction coordinator's moves."""
CLUSTER_BROKERS = 3


@dataclass(frozen=True)
class Case:
    row: Row
    scenario: Scenario
    seed: int
    brokers: int = 1
    """3: the case runs on a three-broker cluster (`environment.kafka.brokers`)."""

    @property
    def path(self) -> Path:
        return experiment_path(self.row, self.scenario)

    @property
    def id(self) -> str:
        return f"{slug(self.row)}/{self.scenario.slug}@{self.seed}{'/cluster' if self.brokers > 1 else ''}"


def experiment_path(row: Row, scenario: Scenario) -> Path:
    return CERTIFICATION_DIR / slug(row) / f"{scenario.slug}.yaml"


def plan(rows: list[Row], quick: bool) -> list[Case]:
    cases = []
    for row in rows:
        for scenario in SCENARIOS:
            if applicability(row, scenario).status != Status.APPLIES:
                continue
            first = experiment_seed(row, scenario)
            cases += [Case(row, scenario, first + k) for k in range(1 if quick else FULL_SEEDS)]
            if not quick and row.source in CLUSTER_SOURCES and scenario.number in CLUSTER_SCENARIOS:
                cases.append(Case(row, scenario, first, brokers=CLUSTER_BROKERS))
    return cases


def with_mutant(experiment: Path, mutant: str | None, directory: Path, repeat: int = 0) -> Path:
    """The experiment with `pipeline.mutant` set to `mutant`, or without any mutant: the seeded-bug run
    and its control run are the same experiment but for the bug. A `repeat` after the first runs
    on the next seed."""
    spec = yaml.safe_load(experiment.read_text())
    pipeline = spec.setdefault("pipeline", {})
    pipeline.pop("mutant", None)
    if mutant is not None:
        pipeline["mutant"] = mutant
    if repeat:
        spec["seed"] = int(spec.get("seed", 0)) + repeat
    target = directory / f"{experiment.stem}-{mutant or 'control'}{f'-{repeat + 1}' if repeat else ''}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target


def materialize(case: Case, quick: bool, directory: Path) -> Path:
    """The case's experiment as it will run (its seed; scaled down with `quick`), written to a file
    so that the run directory records exactly what ran and `chaos replay` can repeat it."""
    spec = experiment(case.row, case.scenario)
    spec["seed"] = case.seed
    if case.brokers > 1:
        spec["environment"] = {"kafka": {"brokers": case.brokers}}
    if quick:
        workload = spec["workload"]
        for field in ("records", "schema_change_at"):
            if field in workload:
                workload[field] = max(1, int(workload[field] * QUICK_SCALE))
        workload["rate"] = workload["rate"] * QUICK_SCALE
    target = directory / slug(case.row) / f"{case.scenario.slug}-{case.seed}{'-cluster' if case.brokers > 1 else ''}.yaml"
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(yaml.safe_dump(spec, sort_keys=False))
    return target
