"""`chaos certify --engine kafka-connect --connector iceberg-sink`: a connector certified as a black box.

The six scenarios are the suite's, but a black box has no crash points and reports nothing of its
own, so each applicable scenario is driven by process and link faults, timed from readiness or by
the commits the harness sees land (`at_commits`), and its evidence is what the harness itself saw:
the fault injected and healed, a killed worker restarted, and commits landing again afterwards.
The result is the connector's computed label and per-scenario verdicts in
`certification.{json,md,html}`, with the external connector's name and version.
"""

from __future__ import annotations

import json
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import yaml
from rich.console import Console
from rich.table import Table

from chaos.certification.plan import FULL_SEEDS
from chaos.certification.scenarios import SCENARIOS, Scenario, Status
from chaos.certification.suite import UNDECIDED, CaseRunner, Outcome
from chaos.env.acquire import acquire_environment
from chaos.errors import EXIT_ENVIRONMENT, EXIT_INCONCLUSIVE, EXIT_OK, EXIT_VIOLATION, SpecError
from chaos.experiment.shape import KafkaShape
from chaos.explore.pages import write_page
from drivers.engines import ENGINE_CONNECTORS, ENGINES, EngineConnector
from drivers.sdk.capabilities import Maturity
from drivers.sdk.events import Event
from drivers.sdk.history import read_history
from faults.targets import known

SEED_BASE = 4100
WORKLOAD = {"records": 9000, "rate": 500, "partitions": 2}
"""18 s of input: the sink's first commit lands some 8 s in (its coordinator is elected, then waits
a commit interval), so the faults timed by commits still meet the stream. `--quick` does not halve
it: it runs each scenario once, where the full suite runs three seeds."""
KILL = {"kind": "kill", "duration": "3s"}


@dataclass(frozen=True)
class BlackBoxScenario:
    scenario: Scenario
    status: Status
    reason: str
    faults: tuple[dict[str, Any], ...] = ()
    workload: dict[str, Any] | None = None


def black_box_scenarios(connector: EngineConnector) -> list[BlackBoxScenario]:
    """Which scenarios apply to a Kafka Connect sink run as a black box, why, and with which faults."""
    by_slug = {s.slug: s for s in SCENARIOS}
    return [
        BlackBoxScenario(by_slug["source-reconnect"], Status.APPLIES,
                         "the workers read the topic over the worker-kafka link, cut for 3 s mid-stream",
                         ({"kind": "down", "target": "worker-kafka", "after_ready": "4s", "duration": "3s"},)),
        BlackBoxScenario(by_slug["ack-after-commit"], Status.APPLIES,
                         "no crash point sits between the sink's commit and the offsets' commit in a black box: "
                         "a worker is killed right after the first commit the harness sees",
                         ({**KILL, "target": "connect-1", "at_commits": 1},)),
        BlackBoxScenario(by_slug["sink-write-failure"], Status.APPLIES,
                         "the sink commits through its catalog: the worker-catalog link is cut for 4 s after "
                         "the first commit, so commits fail and are retried",
                         ({"kind": "down", "target": "worker-catalog", "at_commits": 1, "duration": "4s"},)),
        BlackBoxScenario(by_slug["two-phase-commit"], Status.APPLIES,
                         f"the {connector.title}'s commit coordinator collects the workers' data files and "
                         "commits them: its worker (the role connect-coordinator) is killed after the first "
                         "commit, with 700 ms of latency on the catalog link to keep a commit in flight",
                         ({"kind": "latency", "target": "worker-catalog", "latency_ms": 700, "at_commits": 1,
                           "duration": "15s"},
                          {**KILL, "target": "connect-coordinator", "at_commits": 2})),
        BlackBoxScenario(by_slug["schema-evolution"], Status.APPLIES,
                         "the sink evolves the table's schema (iceberg.tables.evolve-schema-enabled): a column "
                         "is dropped, one widened and one added mid-stream",
                         workload={"schema_change_at": 4500}),
        BlackBoxScenario(by_slug["late-events"], Status.NOT_APPLICABLE,
                         "the connector routes no records by event time: there is no late output to check"),
    ]


def black_box_experiment(connector: EngineConnector, case: BlackBoxScenario, seed: int) -> dict[str, Any]:
    pipeline = {"engine": connector.engine, "connector": connector.name, "source": connector.sources[-1],
                "sink": connector.sink, "profile": "distributed-durable", "workers": 2, "checkpoint_interval": "2s"}
    return {"name": f"cert-{connector.name}-{case.scenario.slug}", "seed": seed, "pipeline": pipeline,
            "workload": {**WORKLOAD, **(case.workload or {})}, "faults": [dict(f) for f in case.faults],
            "expect": {"drain_timeout": "45s"}}


def seeds(case: BlackBoxScenario, quick: bool) -> list[int]:
    first = SEED_BASE + 10 * case.scenario.number
    return [first] if quick else [first + k for k in range(FULL_SEEDS)]


def missing_black_box_evidence(case: BlackBoxScenario, result: dict[str, Any],
                               history: list[dict[str, Any]]) -> list[str]:
    """What the harness must have seen for the scenario to count: the faults injected and healed, a
    killed worker restarted, commits landing after the last heal, and rows written after a schema change."""
    events = [e.get("event") for e in history]
    problems = []
    if case.faults:
        if events.count(Event.FAULT_INJECT) < len(case.faults) or events.count(Event.FAULT_HEAL) < len(case.faults):
            problems.append("not every fault was injected and healed")
        if any(f["kind"] == "kill" for f in case.faults) and not sum(result.get("restarts", {}).values()):
            problems.append("no killed worker was restarted")
        heals = [e["ts"] for e in history if e.get("event") == Event.FAULT_HEAL]
        if heals and not any(e.get("event") == Event.ENGINE_COMMIT_SEEN and e["ts"] > max(heals) for e in history):
            problems.append("no commit landed after the faults healed")
    if case.scenario.slug == "schema-evolution":
        schema = next((v for v in result.get("verdicts", []) if v.get("invariant") == "schema-compatibility"), {})
        if not schema.get("counts", {}).get("after_change"):
            problems.append("no record written after the schema change was in the output to check")
    return problems


def certify_black_box(engine: str, names: list[str] | None, quick: bool, runs_dir: Path, env_file: Path | None,
                      private: bool, console: Console, keep_env: bool = False, only_plan: bool = False) -> int:
    connector = _connector(engine, names)
    if only_plan:
        print_black_box_plan(console, connector)
        return EXIT_OK
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    directory = runs_dir.resolve() / f"certification-{connector.name}-{stamp}{'-quick' if quick else ''}"
    (directory / "logs").mkdir(parents=True)
    cases = black_box_scenarios(connector)
    outcomes: dict[str, Outcome] = {}
    with ExitStack() as stack:
        env = acquire_environment(None if private else env_file, private, True, directory / "env", stack, console,
                                  keep_env)

        fresh = iter(range(1, 1 << 30))

        def fresh_environment(brokers: int = 1) -> Path:
            """A new private environment for a case whose environment failed (each in its own directory)."""
            env = acquire_environment(None, True, True, directory / f"env-{next(fresh)}", stack, console, keep_env,
                                      shape=KafkaShape(brokers))
            return Path(env.state.workdir) / "state.json"

        runner = CaseRunner(directory, Path(env.state.workdir) / "state.json", fresh_environment)
        for case in cases:
            if case.status != Status.APPLIES:
                continue
            runs = [_judged(runner, connector, case, seed, directory, console) for seed in seeds(case, quick)]
            outcomes[case.scenario.slug] = next((o for o in runs if o.status == "fail"),
                                                next((o for o in runs if o.status != "pass"), runs[0]))
    report = black_box_report(connector, cases, outcomes, quick, directory)
    write_black_box_reports(directory, report)
    _print(console, report, directory)
    return {"pass": EXIT_OK, "fail": EXIT_VIOLATION, "error": EXIT_ENVIRONMENT,
            "inconclusive": EXIT_INCONCLUSIVE}[report["status"]]


def _judged(runner: CaseRunner, connector: EngineConnector, case: BlackBoxScenario, seed: int, directory: Path,
            console: Console) -> Outcome:
    """One run of a scenario, held to its invariants and to the evidence the harness saw."""
    path = directory / "experiments" / f"{case.scenario.slug}-{seed}.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(black_box_experiment(connector, case, seed), sort_keys=False))
    name = f"{connector.name}/{case.scenario.slug}@{seed}"
    outcome = runner.run(name, path, directory / "runs")
    if outcome.status == "inconclusive":  # proved nothing either way (a fault met an idle moment): once more
        first = outcome.message
        outcome = runner.run(f"{name} again", path, directory / "runs")
        outcome.message = "; ".join(filter(None, [outcome.message, f"run again after: {first}"]))
    if outcome.status not in UNDECIDED and outcome.run_dir is not None:
        result = json.loads((outcome.run_dir / "result.json").read_text())
        history = read_history(outcome.run_dir / "history.jsonl")
        outcome.failed += missing_black_box_evidence(case, result, history)
        outcome.status = "fail" if outcome.failed else "pass"
    console.print(f"{outcome.status:>12} {outcome.name} ({outcome.seconds:.0f}s)"
                  + (f": {', '.join(outcome.failed) or outcome.message}" if outcome.status != "pass" else ""),
                  highlight=False, markup=False)
    return outcome


def black_box_report(connector: EngineConnector, cases: list[BlackBoxScenario], outcomes: dict[str, Outcome],
                     quick: bool, directory: Path) -> dict[str, Any]:
    """The scenarios' verdicts and the connector's computed label: Certified only when every
    applicable scenario passed; an undecided run (environment, inconclusive) leaves it undecided."""
    scenarios = []
    for case in cases:
        outcome = outcomes.get(case.scenario.slug)
        scenarios.append({
            "number": case.scenario.number, "scenario": case.scenario.slug, "title": case.scenario.title,
            "applicability": case.status.value, "why": case.reason,
            "status": outcome.status if outcome is not None else case.status.value,
            "failed": outcome.failed if outcome is not None else [],
            "message": outcome.message if outcome is not None else "",
            "run_dir": str(outcome.run_dir.relative_to(directory)) if outcome and outcome.run_dir else None})
    statuses = [s["status"] for s in scenarios if s["applicability"] == Status.APPLIES.value]
    status = ("fail" if "fail" in statuses else "error" if "error" in statuses
              else "inconclusive" if "inconclusive" in statuses else "pass")
    label = {"pass": Maturity.CERTIFIED.value, "fail": Maturity.PREVIEW.value}.get(status)
    return {"mode": "quick" if quick else "full", "status": status, "engine": connector.engine,
            "connector": {"name": connector.name, "title": connector.title, "version": connector.version,
                          "class": connector.connector_class, "row": f"{connector.sources[-1]} -> {connector.sink}",
                          "computed": label},
            "scenarios": scenarios}


def write_black_box_reports(directory: Path, report: dict[str, Any]) -> None:
    connector = report["connector"]
    (directory / "certification.json").write_text(json.dumps(report, indent=2))
    lines = [f"# Certification ({report['mode']}) of {connector['title']} {connector['version']} on "
             f"{report['engine']}: {report['status'].upper()}", "",
             f"Row: {connector['row']}. Computed label: {connector['computed'] or 'undecided'}.", "",
             "| # | scenario | applies | verdict | why |", "|---|---|---|---|---|"]
    lines += [f"| {s['number']} | {s['scenario']} | {s['applicability']} | {s['status']}"
              f"{' (' + ', '.join(s['failed']) + ')' if s['failed'] else ''} | {s['why']} |"
              for s in report["scenarios"]]
    (directory / "certification.md").write_text("\n".join(lines) + "\n")
    rows = [{"label": str(s["number"]), "change": f"{s['scenario']}: {s['why']}", "status": s["status"],
             "failed": s["failed"], "run_dir": s["run_dir"]} for s in report["scenarios"]]
    write_page(directory / "certification.html", f"certification of {connector['title']} {connector['version']}",
               [f"{report['engine']}, {connector['row']}: {report['status']}; computed label "
                f"{connector['computed'] or 'undecided'}"], rows)


def _connector(engine: str, names: list[str] | None) -> EngineConnector:
    try:
        # Only an engine that runs connectors of its own has any to certify (not native, not command).
        known(engine, [e for e in ENGINES if any(c.engine == e for c in ENGINE_CONNECTORS.values())], "engine")
    except ValueError as e:
        raise SpecError("--engine", [str(e)]) from None
    offered = [c.name for c in ENGINE_CONNECTORS.values() if c.engine == engine]
    if not names or len(names) != 1:
        raise SpecError("--connector", [f"name one {engine} connector to certify: {', '.join(offered)}"])
    try:
        return ENGINE_CONNECTORS[known(names[0], offered, f"{engine} connector")]
    except ValueError as e:
        raise SpecError("--connector", [str(e)]) from None


def _print(console: Console, report: dict[str, Any], directory: Path) -> None:
    connector = report["connector"]
    table = Table(title=f"certification ({report['mode']}) of {connector['title']} {connector['version']}: "
                        f"{report['status'].upper()}", title_justify="left")
    for column in ("#", "scenario", "verdict", "why"):
        table.add_column(column)
    for s in report["scenarios"]:
        table.add_row(str(s["number"]), s["scenario"], s["status"], s["why"])
    console.print(table)
    console.print(f"{connector['title']} (sink): {connector['computed'] or 'undecided'}", highlight=False)
    console.print(f"report: {directory / 'certification.html'}", highlight=False)


def print_black_box_plan(console: Console, connector: EngineConnector) -> None:
    """The scenarios as a black box meets them: which apply, why, and the faults that drive each."""
    table = Table(title=f"certification scenarios of {connector.title} {connector.version} on {connector.engine}",
                  title_justify="left")
    for column in ("scenario", "applies", "why", "faults"):
        table.add_column(column)
    for case in black_box_scenarios(connector):
        faults = "; ".join(", ".join(f"{key} {value}" for key, value in fault.items()) for fault in case.faults)
        table.add_row(f"{case.scenario.number}. {case.scenario.slug}", case.status.value, case.reason,
                      faults or ("no fault: " + ", ".join(f"{k} {v}" for k, v in (case.workload or {}).items())
                                 if case.status == Status.APPLIES else ""))
    console.print(table)
