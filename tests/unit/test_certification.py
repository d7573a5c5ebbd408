"""The certification suite's pure parts: the applicability table against the committed experiments,
the plan, the evidence a scenario must leave, the computed maturity labels, and the report."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
import yaml

from chaos.certification.evidence import missing_evidence
from chaos.certification.maturity import compute_labels
from chaos.certification.mutants import MUTANTS
from chaos.certification.plan import CERTIFICATION_DIR, REPO, materialize, plan
from chaos.certification.report import build_report, markdown, to_html
from chaos.certification.scenarios import (
    BY_SLUG,
    SCENARIOS,
    Status,
    applicability,
    certification_rows,
    slug,
)
from chaos.certification.suite import CaseRunner, Outcome, SuiteRun
from chaos.experiment import load_experiment
from drivers.connectors import SINKS
from drivers.sdk.capabilities import Maturity

ROWS = [r for r in certification_rows() if not r.plugin]
"""Our own rows: a plug-in installed beside (the example) joins rows of its own."""
APPLICABLE = [(r, s) for r in ROWS for s in SCENARIOS if applicability(r, s).status == Status.APPLIES]


def test_the_suite_runs_every_certifiable_row_and_not_the_experimental_vector_row():
    assert len(ROWS) == 11
    assert all(r.sink != "vector" for r in ROWS)


def test_every_applicable_scenario_has_its_experiment_and_no_file_is_left_over():
    expected = {CERTIFICATION_DIR / slug(r) / f"{s.slug}.yaml" for r, s in APPLICABLE}
    assert set(CERTIFICATION_DIR.glob("*/*.yaml")) == expected


@pytest.mark.parametrize("row,scenario", APPLICABLE, ids=lambda v: getattr(v, "slug", None) or slug(v))
def test_each_certification_experiment_is_valid_runs_its_row_and_is_the_one_the_suite_generates(row, scenario):
    from chaos.certification.experiments import experiment_yaml

    path = CERTIFICATION_DIR / slug(row) / f"{scenario.slug}.yaml"
    assert path.read_text() == experiment_yaml(row, scenario), "run python -m chaos.certification.experiments"
    x = load_experiment(path)
    assert (x.pipeline.source, x.pipeline.sink) == (row.source, row.sink)
    assert x.pipeline.mutant is None
    assert x.faults, "every scenario injects something"


def test_every_scenario_that_does_not_apply_says_why():
    for row in ROWS:
        for scenario in SCENARIOS:
            assert len(applicability(row, scenario).reason) > 20


def test_applicability_follows_the_connectors():
    by = {slug(r): r for r in ROWS}
    assert applicability(by["kafka-to-parquet"], BY_SLUG["source-reconnect"]).status == Status.APPLIES
    assert applicability(by["parquet-batch-to-parquet"], BY_SLUG["source-reconnect"]).status == Status.NOT_APPLICABLE
    assert applicability(by["kafka-to-parquet"], BY_SLUG["two-phase-commit"]).status == Status.NOT_APPLICABLE
    assert applicability(by["delta-batch-to-delta-2pc"], BY_SLUG["schema-evolution"]).status == Status.APPLIES
    assert applicability(by["delta-batch-to-delta-batch"], BY_SLUG["sink-write-failure"]).status == Status.APPLIES
    assert applicability(by["memory-stream-to-memory"], BY_SLUG["sink-write-failure"]).status == Status.NOT_APPLICABLE


def test_quick_runs_each_case_once_at_half_size_and_full_runs_three_seeds(tmp_path):
    quick, full = plan(ROWS, quick=True), plan(ROWS, quick=False)
    on_one_broker = [c for c in full if c.brokers == 1]
    assert len(quick) == len(APPLICABLE) and len(on_one_broker) == 3 * len(APPLICABLE)
    assert len({c.id for c in full}) == len(full)
    case = next(c for c in quick if c.scenario.slug == "schema-evolution")
    written = yaml.safe_load(case.path.read_text())
    scaled = load_experiment(materialize(case, True, tmp_path))
    assert scaled.workload.records == written["workload"]["records"] // 2
    assert scaled.workload.schema_change_at == written["workload"]["schema_change_at"] // 2
    assert scaled.workload.rate == written["workload"]["rate"] / 2
    assert scaled.seed == case.seed
    assert load_experiment(materialize(full[1], False, tmp_path)).seed == full[0].seed + 1


def _history(*events: dict) -> list[dict]:
    return [{"ts": i, **e} for i, e in enumerate(events)]


BY_ROW = {slug(r): r for r in ROWS}
INJECT_HEAL = ({"event": "fault.inject", "index": 0, "kind": "down", "target": "worker-kafka"},
               {"event": "fault.heal", "index": 0})
# Per scenario: a row it applies to, a run that shows everything, and the result that goes with it.
COMPLETE = {
    "source-reconnect": ("kafka-to-parquet", {}, [
        *INJECT_HEAL, {"event": "source.disconnected"}, {"event": "source.reconnected"}]),
    "sink-write-failure": ("parquet-batch-to-parquet-2pc", {"restarts": {"worker-0": 1}}, [
        {"event": "fault.inject", "index": 0, "kind": "disk", "target": "worker-0"},
        {"event": "disk.fault_hit", "process": "worker-0", "op": "write", "mode": "eio"},
        {"event": "fault.heal", "index": 0}]),
    "ack-after-commit": ("kafka-to-parquet", {"restarts": {"worker-0": 1}}, [
        {"event": "crash", "process": "worker-0", "point": "source.ack.before"}]),
    "two-phase-commit": ("kafka-transactional-to-parquet-2pc", {}, [
        {"event": "crash", "process": "coordinator", "point": p}
        for p in ("coordinator.persist.before", "coordinator.persist.after", "coordinator.commit.mid")]),
    "schema-evolution": ("kafka-to-parquet", {"verdicts": [
        {"invariant": "schema-compatibility", "counts": {"after_change": 40}}]}, [
        {"event": "schema.change_seen", "worker": 0, "first_id": 60}]),
    "late-events": ("kafka-to-parquet", {"verdicts": [{"invariant": "late-events", "counts": {"late": 12}}]}, []),
}


@pytest.mark.parametrize("scenario", SCENARIOS, ids=lambda s: s.slug)
def test_a_run_that_shows_its_scenario_has_all_the_evidence(scenario):
    row, result, events = COMPLETE[scenario.slug]
    assert missing_evidence(scenario, BY_ROW[row], result, _history(*events)) == []


@pytest.mark.parametrize("scenario,deleted", [(s, i) for s in SCENARIOS for i in range(len(COMPLETE[s.slug][2]))],
                         ids=lambda v: getattr(v, "slug", str(v)))
def test_deleting_any_event_of_the_evidence_fails_the_case(scenario, deleted):
    row, result, events = COMPLETE[scenario.slug]
    remaining = [e for i, e in enumerate(events) if i != deleted]
    assert missing_evidence(scenario, BY_ROW[row], result, _history(*remaining)) != [], events[deleted]


@pytest.mark.parametrize("scenario,result", [
    ("sink-write-failure", {"restarts": {"worker-0": 0}}),
    ("ack-after-commit", {"restarts": {"worker-0": 0}}),
    ("schema-evolution", {"verdicts": [{"invariant": "schema-compatibility", "counts": {"after_change": 0}}]}),
    ("late-events", {"verdicts": [{"invariant": "late-events", "counts": {"late": 0}}]}),
])
def test_a_result_without_its_part_of_the_evidence_fails_the_case(scenario, result):
    row, _, events = COMPLETE[scenario]
    assert missing_evidence(BY_SLUG[scenario], BY_ROW[row], result, _history(*events)) != []


def test_a_disk_fault_that_only_stalled_is_no_failed_write():
    row, result, events = COMPLETE["sink-write-failure"]
    stalled = [{**e, "mode": "stall"} if e["event"] == "disk.fault_hit" else e for e in events]
    (problem,) = missing_evidence(BY_SLUG["sink-write-failure"], BY_ROW[row], result, _history(*stalled))
    assert "never failed a sink write" in problem


def test_the_kafka_sink_s_write_failure_must_cut_its_own_link_not_the_source_s():
    row = BY_ROW["kafka-transactional-to-kafka-transactional"]
    cut = [{"event": "fault.inject", "index": 0, "kind": "down", "target": "sink-kafka"},
           {"event": "sink.write_failed", "error": "Connection refused"}, {"event": "fault.heal", "index": 0}]
    assert missing_evidence(BY_SLUG["sink-write-failure"], row, {}, _history(*cut)) == []
    source_cut = [{**cut[0], "target": "worker-kafka"}, *cut[1:]]
    (problem,) = missing_evidence(BY_SLUG["sink-write-failure"], row, {}, _history(*source_cut))
    assert "the sink's own link (sink-kafka)" in problem


def _all_pass() -> dict[tuple[str, str], str]:
    return {(slug(r), s.slug): "pass" for r, s in APPLICABLE}


def _without_widening(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    """The sink `name` as if it took added and dropped columns only (as the Delta sinks once did)."""
    kind = SINKS[name]
    narrowed = replace(kind.capabilities, schema_changes=frozenset({"add", "drop"}))
    monkeypatch.setitem(SINKS, name, replace(kind, capabilities=narrowed))


def test_a_connector_is_certified_only_when_all_its_rows_pass_and_are_covered(monkeypatch):
    labels = {(label.connector.role, label.connector.name): label for label in compute_labels(ROWS, _all_pass())}
    assert labels[("sink", "parquet-2pc")].computed == Maturity.CERTIFIED
    assert labels[("sink", "delta-2pc")].computed == Maturity.CERTIFIED
    _without_widening(monkeypatch, "delta-2pc")
    row = next(r for r in ROWS if slug(r) == "delta-batch-to-delta-2pc")
    assert applicability(row, BY_SLUG["schema-evolution"]).status == Status.NOT_COVERED
    labels = {(label.connector.role, label.connector.name): label for label in compute_labels(ROWS, _all_pass())}
    delta = labels[("sink", "delta-2pc")]
    assert delta.computed == Maturity.PREVIEW and "schema-evolution not covered" in delta.why
    assert labels[("sink", "vector")].computed == Maturity.EXPERIMENTAL


def test_a_certified_connector_that_fails_is_an_error():
    status = _all_pass() | {("kafka-transactional-to-parquet-2pc", "two-phase-commit"): "fail"}
    labels = {(label.connector.role, label.connector.name): label for label in compute_labels(ROWS, status)}
    sink = labels[("sink", "parquet-2pc")]
    assert sink.computed == Maturity.PREVIEW and "two-phase-commit failed" in sink.why
    assert sink.error == (sink.declared == Maturity.CERTIFIED)


def test_a_connector_whose_rows_did_not_all_run_is_not_assessed():
    kafka_rows = [r for r in ROWS if slug(r) == "kafka-to-parquet"]
    labels = {(label.connector.role, label.connector.name): label for label in compute_labels(kafka_rows, _all_pass())}
    assert labels[("source", "kafka")].computed == Maturity.CERTIFIED
    assert labels[("sink", "parquet")].computed is None


def _suite(tmp_path: Path, failing: str | None = None, survivor: str | None = None) -> SuiteRun:
    cases = {}
    for case in plan(ROWS, quick=True):
        run_dir = tmp_path / "runs" / case.id.replace("/", "-")
        bad = case.id.startswith(f"{failing}@") if failing else False
        cases[case.id] = Outcome(case.id, "fail" if bad else "pass", run_dir, ["duplicates"] if bad else [])
    mutants = {m.name: Outcome(m.name, "survived" if m.name == survivor else "killed", None,
                               [] if m.name == survivor else [m.caught_by]) for m in MUTANTS}
    return SuiteRun(tmp_path, True, ROWS, cases, mutants, 12.5)


def test_the_report_passes_when_everything_passes_and_every_mutant_is_killed(tmp_path):
    report = build_report(_suite(tmp_path))
    assert report["status"] == "pass" and report["errors"] == []
    assert report["mutants"]["kill_rate"] == 1.0
    row = next(r for r in report["rows"] if r["row"] == "kafka-to-parquet")
    assert [s["status"] for s in row["scenarios"]] == ["pass", "pass", "pass", "n/a", "pass", "pass"]
    assert "| kafka-to-parquet | at least once |" in markdown(report)
    assert "<td class=\"pass\"" in to_html(report)


def test_a_surviving_mutant_fails_the_certification(tmp_path):
    report = build_report(_suite(tmp_path, survivor="drop-late"))
    assert report["status"] == "fail"
    assert report["mutants"]["kill_rate"] == round((len(MUTANTS) - 1) / len(MUTANTS), 3)
    assert any("drop-late" in e for e in report["errors"])


def test_a_failing_case_fails_its_row_and_demotes_its_connectors(tmp_path):
    report = build_report(_suite(tmp_path, failing="kafka-transactional-to-parquet-2pc/two-phase-commit"))
    row = next(r for r in report["rows"] if r["row"] == "kafka-transactional-to-parquet-2pc")
    assert row["status"] == "fail"
    sink = next(c for c in report["connectors"] if (c["role"], c["name"]) == ("sink", "parquet-2pc"))
    assert sink["computed"] == "Preview"
    assert report["status"] == ("fail" if sink["declared"] == "Certified" else "pass")


def test_each_scenario_has_a_mutant_and_every_mutant_and_incident_experiment_is_in_the_suite():
    assert {m.scenario for m in MUTANTS} == {s.slug for s in SCENARIOS}
    experiments = {REPO / m.path for m in MUTANTS}
    assert set((REPO / "experiments" / "mutants").glob("*.yaml")) <= experiments
    assert set((REPO / "experiments" / "incidents").glob("*.yaml")) <= experiments, "every incident is falsifiable"
    for mutant in MUTANTS:
        x = load_experiment(REPO / mutant.path)
        assert x.pipeline.mutant in (mutant.name, None)


def test_a_mutant_and_its_control_run_the_same_experiment_but_for_the_bug(tmp_path):
    from chaos.certification.plan import with_mutant

    mutant = next(m for m in MUTANTS if m.name == "drop-late")
    buggy = load_experiment(with_mutant(REPO / mutant.path, mutant.name, tmp_path))
    control = load_experiment(with_mutant(REPO / mutant.path, None, tmp_path))
    assert buggy.pipeline.mutant == "drop-late" and control.pipeline.mutant is None
    assert buggy.model_copy(update={"pipeline": control.pipeline}) == control


def test_a_kill_whose_control_run_fails_proves_nothing(tmp_path):
    suite = _suite(tmp_path)
    bad = suite.mutants["drop-late"]
    bad.status = "invalid-control"
    bad.message = "the control run without the bug did not pass (fail: late-events), so failing proves nothing"
    report = build_report(suite)
    assert report["status"] == "fail" and any("drop-late" in e and "control" in e for e in report["errors"])
    assert report["mutants"]["killed"] == len(MUTANTS) - 1


class ScriptedRunner(CaseRunner):
    """The suite's mutant logic over scripted runs: `script` maps a run's name to (status, failed
    invariants, whether the bug bit); a name not in it is a kill that bit."""

    def __init__(self, tmp_path: Path, caught_by: str, script: dict[str, tuple[str, list[str], bool]]):
        super().__init__(tmp_path, tmp_path / "state.json", lambda brokers=1: tmp_path / "state.json")
        self.caught_by, self.script, self.ran = caught_by, script, []

    def run(self, name: str, experiment: Path, runs_dir: Path, brokers: int = 1) -> Outcome:
        self.ran.append(name)
        default = ("pass", [], False) if name.endswith("control") else ("fail", [self.caught_by], True)
        status, failed, bit = self.script.get(name, default)
        run_dir = runs_dir / name.replace(" ", "-").replace("#", "")
        run_dir.mkdir(parents=True)
        (run_dir / "history.jsonl").write_text('{"event": "mutant.active"}\n' if bit else "")
        return Outcome(name, status, run_dir, list(failed))


@pytest.mark.parametrize("script, status, runs", [
    ({}, "killed", ["reconnect-skip", "reconnect-skip control", "reconnect-skip #2", "reconnect-skip #3"]),
    ({"reconnect-skip #2": ("pass", [], True)}, "survived",
     ["reconnect-skip", "reconnect-skip control", "reconnect-skip #2"]),
    ({"reconnect-skip #3": ("fail", ["no-loss"], False)}, "inconclusive",
     ["reconnect-skip", "reconnect-skip control", "reconnect-skip #2", "reconnect-skip #3"]),
    ({"reconnect-skip control": ("fail", ["no-loss"], False)}, "invalid-control",
     ["reconnect-skip", "reconnect-skip control"]),
])
def test_a_timing_sensitive_mutant_must_be_killed_in_every_run(tmp_path, script, status, runs):
    mutant = next(m for m in MUTANTS if m.name == "reconnect-skip")
    assert mutant.repeats == 3
    runner = ScriptedRunner(tmp_path, mutant.caught_by, script)
    outcome = runner.mutant(mutant)
    assert (outcome.status, runner.ran) == (status, runs)
    if status == "killed":
        assert outcome.message == "killed in each of 3 runs"


def test_the_repeats_of_a_mutant_run_on_their_own_seeds(tmp_path):
    from chaos.certification.plan import with_mutant

    mutant = next(m for m in MUTANTS if m.repeats > 1)
    seeds = [load_experiment(with_mutant(REPO / mutant.path, mutant.name, tmp_path, n)).seed for n in range(3)]
    assert len(set(seeds)) == 3


def test_the_documented_applicability_table_is_the_one_the_code_computes():
    from chaos.certification.report import applicability_markdown

    assert applicability_markdown() in (REPO / "docs" / "certification.md").read_text()


def test_the_connector_table_declares_exactly_the_labels_a_passing_suite_computes():
    for label in compute_labels(ROWS, _all_pass()):
        assert label.declared == label.computed, (label.connector.name, label.connector.role, label.why)


def test_an_environment_error_never_lowers_a_label_and_the_suite_says_error(tmp_path):
    suite = _suite(tmp_path)
    broken = "kafka-transactional-to-parquet-2pc/two-phase-commit"
    case_id = next(k for k in suite.cases if k.startswith(f"{broken}@"))
    suite.cases[case_id] = Outcome(case_id, "error", None, [], "coordinator could not start", exit_code=3)
    report = build_report(suite)
    assert report["status"] == "error" and report["errors"] == []
    assert report["environment_errors"] == [f"{case_id}: coordinator could not start"]
    row = next(r for r in report["rows"] if r["row"] == "kafka-transactional-to-parquet-2pc")
    assert row["status"] == "error"
    sink = next(c for c in report["connectors"] if (c["role"], c["name"]) == ("sink", "parquet-2pc"))
    assert sink["computed"] is None and "environment error" in sink["why"] and not sink["error"]
    assert "Environment errors" in markdown(report) and "Environment errors" in to_html(report)


def test_a_real_failure_beside_an_environment_error_still_fails(tmp_path):
    suite = _suite(tmp_path, failing="kafka-transactional-to-parquet-2pc/two-phase-commit")
    other = next(k for k in suite.cases if k.startswith("kafka-to-parquet/"))
    suite.cases[other] = Outcome(other, "error", None, [], "kafka died", exit_code=3)
    assert build_report(suite)["status"] == "fail"


def test_a_mutant_that_ended_in_an_environment_error_did_not_survive(tmp_path):
    suite = _suite(tmp_path)
    suite.mutants["drop-late"] = Outcome("drop-late", "error", None, [], "toxiproxy died", exit_code=3)
    report = build_report(suite)
    assert report["status"] == "error" and report["errors"] == []


class ScriptedCases(CaseRunner):
    """The suite's case logic over scripted runs of the ack-after-commit case: each run in `script`
    is (status, failed invariants, whether its history shows the worker crash the scenario needs)."""

    def __init__(self, tmp_path: Path, script: list[tuple[str, list[str], bool]]):
        super().__init__(tmp_path, tmp_path / "state.json", lambda brokers=1: tmp_path / "state.json")
        self.script, self.ran = list(script), []

    def run(self, name: str, experiment: Path, runs_dir: Path, brokers: int = 1) -> Outcome:
        self.ran.append(name)
        status, failed, crashed = self.script.pop(0)
        run_dir = runs_dir / f"run-{len(self.ran)}"
        run_dir.mkdir(parents=True)
        (run_dir / "result.json").write_text('{"restarts": {"worker-0": 1}, "verdicts": []}')
        crash = '{"event": "crash", "point": "source.ack.before", "process": "worker-0"}\n'
        (run_dir / "history.jsonl").write_text(crash if crashed else "")
        return Outcome(name, status, None if status == "inconclusive" else run_dir, list(failed),
                       "a fault met no traffic" if status == "inconclusive" else "")


ACK_CASE = next(c for c in plan([BY_ROW["kafka-to-parquet"]], True) if c.scenario.slug == "ack-after-commit")


def test_the_full_suite_runs_the_kafka_rows_reconnect_and_commit_cases_on_a_cluster_too(tmp_path):
    full = plan(list(BY_ROW.values()), quick=False)
    clustered = {(slug(c.row), c.scenario.number) for c in full if c.brokers == 3}
    kafka_rows = {slug(c.row) for c in full if c.row.source in ("kafka", "kafka-transactional")}
    assert {row for row, _ in clustered} == kafka_rows and {n for _, n in clustered} <= {1, 4}
    assert all((slug(c.row), c.scenario.number) in clustered for c in full
               if slug(c.row) in kafka_rows and c.scenario.number in (1, 4))
    assert not any(c.brokers == 3 for c in plan(list(BY_ROW.values()), quick=True))  # the quick suite: one broker
    case = next(c for c in full if c.brokers == 3)
    assert case.id.endswith("/cluster")
    written = load_experiment(materialize(case, False, tmp_path))
    assert written.environment.kafka.brokers == 3 and written.seed == case.seed


@pytest.mark.parametrize("script, status, runs, failed", [
    ([("pass", [], True)], "pass", 1, []),
    # A run that kept every invariant but missed its evidence, or proved nothing, gets one more run.
    ([("pass", [], False), ("pass", [], True)], "pass", 2, []),
    ([("inconclusive", [], False), ("pass", [], True)], "pass", 2, []),
    ([("pass", [], False), ("pass", [], False)], "fail", 2,
     ["no worker crashed between the sink's commit and the source's ack"]),
    ([("inconclusive", [], False), ("inconclusive", [], False)], "inconclusive", 2, []),
    # A real violation is never run again, with or without its evidence.
    ([("fail", ["no-loss"], False)], "fail", 1,
     ["no-loss", "no worker crashed between the sink's commit and the source's ack"]),
    ([("fail", ["no-loss"], True)], "fail", 1, ["no-loss"]),
])
def test_an_undecided_case_runs_once_more_and_a_violation_never_does(tmp_path, script, status, runs, failed):
    runner = ScriptedCases(tmp_path, script)
    outcome = runner.case(ACK_CASE, quick=True)
    assert (outcome.status, len(runner.ran), outcome.failed) == (status, runs, failed)
    if runs == 2:
        assert runner.ran[1] == f"{ACK_CASE.id} again" and "run again after:" in outcome.message
