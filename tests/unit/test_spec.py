"""The experiment spec: models, loader error messages, targets, and `chaos validate`."""

from __future__ import annotations

import math
import os
import subprocess
import sys
from pathlib import Path

import pytest

from chaos.errors import SpecError
from chaos.experiment.loader import load_experiment, parse_experiment
from chaos.experiment.models import Experiment
from drivers.sdk.links import NETWORK_LINKS
from faults.catalog import FAULT_KINDS, KillFault, LatencyFault, PartitionFault
from faults.fields import parse_duration
from faults.targets import PROCESSES, suggest

REPO = Path(__file__).resolve().parents[2]
EXPERIMENTS = sorted((REPO / "experiments").glob("*.yaml"))

BASE = """\
name: unit
seed: 7
pipeline:
  source: kafka
  sink: parquet
  profile: single-node-durable
  checkpoint_interval: 1s
workload:
  records: 1000
  rate: 100
faults:
  - at: 2s
    kind: latency
    target: worker-kafka
    duration: 3s
    latency_ms: 200
  - at_records: 500
    kind: kill
    target: worker-0
    duration: 1s
expect:
  duplicates: allow
"""


def line_of(text: str, needle: str) -> int:
    """1-based line of the only line containing `needle`."""
    hits = [i for i, line in enumerate(text.splitlines(), 1) if needle in line]
    assert len(hits) == 1, f"{needle!r} is on lines {hits}"
    return hits[0]


def edit(old: str, new: str, text: str = BASE) -> str:
    assert text.count(old) == 1, f"{old!r} is not unique in the base document"
    return text.replace(old, new)


def problems_of(text: str, source: str = "exp.yaml") -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, source)
    assert info.value.path == source
    assert info.value.problems, "a SpecError must list at least one problem"
    return info.value.problems


# --- files that must load -----------------------------------------------------------------------


def test_base_document_loads_with_typed_faults():
    x = parse_experiment(BASE, "exp.yaml")
    assert isinstance(x, Experiment)
    assert x.name == "unit" and x.seed == 7
    assert x.pipeline.checkpoint_interval == 1.0
    assert x.workload.records == 1000 and x.workload.keys == 100  # default
    latency, kill = x.faults
    assert isinstance(latency, LatencyFault) and latency.at == 2.0 and latency.duration == 3.0
    assert latency.latency_ms == 200 and latency.jitter_ms == 0
    assert isinstance(kill, KillFault) and kill.at_records == 500 and kill.at is None


def test_quickstart_loads():
    x = load_experiment(REPO / "experiments" / "quickstart.yaml")
    assert x.name == "quickstart"
    assert x.seed == 42
    assert x.workload.records == 20000
    assert len(x.faults) == 1
    fault = x.faults[0]
    assert isinstance(fault, PartitionFault)
    assert (fault.at, fault.duration, fault.target) == (4.0, 5.0, "worker-kafka")
    assert x.expect.drain_timeout == 60.0


def test_experiments_directory_is_not_empty():
    assert EXPERIMENTS, "no experiments/*.yaml found"


@pytest.mark.parametrize("path", EXPERIMENTS, ids=[p.name for p in EXPERIMENTS])
def test_every_shipped_experiment_loads(path):
    assert isinstance(load_experiment(path), Experiment)


# --- unknown keys: did-you-mean, field path and line --------------------------------------------


def test_unknown_top_level_key():
    text = edit("seed: 7\n", "seed: 7\nsede: 8\n")
    assert problems_of(text) == [f"line {line_of(text, 'sede')}: sede: unknown key; did you mean 'seed'?"]


def test_unknown_pipeline_key():
    text = edit("  profile: single-node-durable\n", "  profile: single-node-durable\n  profle: x\n")
    assert problems_of(text) == [
        f"line {line_of(text, 'profle')}: pipeline.profle: unknown key; did you mean 'profile'?"]


def test_unknown_workload_key_and_missing_records():
    text = edit("  records: 1000", "  recrods: 1000")
    problems = problems_of(text)
    assert f"line {line_of(text, 'recrods')}: workload.recrods: unknown key; did you mean 'records'?" in problems
    # the missing field has no line of its own: it is reported at its parent, `workload:`
    assert f"line {line_of(text, 'workload:')}: workload.records: Field required" in problems
    assert len(problems) == 2


def test_unknown_key_inside_a_fault_names_the_fault_not_the_union_tag():
    text = edit("    latency_ms: 200\n", "    latency_ms: 200\n    jiter_ms: 5\n")
    (problem,) = problems_of(text)
    assert problem == f"line {line_of(text, 'jiter_ms')}: faults[0].jiter_ms: unknown key; did you mean 'jitter_ms'?"
    assert "latency.jiter_ms" not in problem


def test_unknown_key_in_second_fault_points_at_second_fault():
    text = edit("    target: worker-0\n", "    target: worker-0\n    duraton: 2s\n")
    (problem,) = problems_of(text)
    assert problem == f"line {line_of(text, 'duraton')}: faults[1].duraton: unknown key; did you mean 'duration'?"


def test_unknown_key_without_a_close_match_lists_allowed_keys():
    text = edit("  rate: 100\n", "  rate: 100\n  zzzzzz: 1\n")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, 'zzzzzz')}: workload.zzzzzz: unknown key; allowed here: ")
    for field in ("records", "rate", "keys", "payload_size", "partitions"):
        assert field in problem


def test_every_problem_is_reported_not_just_the_first():
    text = edit("seed: 7\n", "seed: 7\nsede: 8\n", edit("  records: 1000", "  recrods: 1000"))
    problems = problems_of(text)
    assert any("sede: unknown key" in p for p in problems)
    assert any("workload.recrods: unknown key" in p for p in problems)


# --- faults -------------------------------------------------------------------------------------


def test_unknown_fault_kind():
    text = edit("kind: latency", "kind: explode")
    (problem,) = problems_of(text)
    assert problem == (f"line {line_of(text, '- at: 2s')}: faults[0]: unknown fault kind 'explode'; "
                       f"kinds: {', '.join(FAULT_KINDS)}")
    assert {"down", "partition", "latency", "kill", "pause", "disk", "crash"} <= set(FAULT_KINDS)


def test_missing_fault_kind():
    text = edit("    kind: kill\n", "")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, '- at_records: 500')}: faults[1]: missing `kind`")


def test_fault_with_both_triggers():
    text = edit("  - at: 2s\n", "  - at: 2s\n    at_records: 10\n")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, '- at: 2s')}: faults[0]: give exactly one trigger")


def test_fault_with_no_trigger():
    text = edit("  - at: 2s\n    kind: latency\n", "  - kind: latency\n")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, '- kind: latency')}: faults[0]: give exactly one trigger")


@pytest.mark.parametrize("at_records", [1000, 5000])
def test_at_records_that_never_fires(at_records):
    text = edit("at_records: 500", f"at_records: {at_records}")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, f'at_records: {at_records}')}: faults[1].at_records: "
                              f"{at_records} never fires")
    assert "1000 records" in problem


def test_at_records_just_below_the_workload_fires():
    x = parse_experiment(edit("at_records: 500", "at_records: 999"), "exp.yaml")
    assert x.faults[1].at_records == 999


def test_unknown_link_target_with_suggestion():
    text = edit("target: worker-kafka", "target: worker-kafak")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, 'worker-kafak')}: faults[0].target: unknown link 'worker-kafak'")
    assert problem.endswith("did you mean 'worker-kafka'?")


def test_process_name_is_not_a_link():
    (problem,) = problems_of(edit("target: worker-kafka", "target: worker-0"))
    assert "faults[0].target: unknown link 'worker-0'" in problem


def test_unknown_process_target_for_kill():
    text = edit("target: worker-0", "target: worker-0x")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, 'worker-0x')}: faults[1].target: unknown process 'worker-0x' "
                              "(processes: coordinator, worker-0, ")
    assert problem.endswith("did you mean 'worker-0'?")


def test_kill_cannot_target_a_link():
    (problem,) = problems_of(edit("target: worker-0", "target: worker-kafka"))
    assert "faults[1].target: unknown process 'worker-kafka'" in problem


def test_bad_fault_duration_is_reported_at_its_line():
    text = edit("duration: 3s", "duration: fast")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, 'duration: fast')}: faults[0].duration: expected a duration")
    assert "'fast'" in problem


def test_suggest():
    assert suggest("worker-kafak", NETWORK_LINKS) == "; did you mean 'worker-kafka'?"
    assert suggest("coordinater", PROCESSES) == "; did you mean 'coordinator'?"
    assert suggest("zookeeper", NETWORK_LINKS) == ""


# --- durations ----------------------------------------------------------------------------------


@pytest.mark.parametrize("value, seconds", [
    ("5s", 5.0), ("500ms", 0.5), ("2m", 120.0), ("1h", 3600.0), ("1.5s", 1.5), ("7", 7.0), (" 5 s ", 5.0),
    (3, 3.0), (0, 0.0), (2.5, 2.5),
])
def test_parse_duration_accepts(value, seconds):
    assert parse_duration(value) == pytest.approx(seconds)


@pytest.mark.parametrize("value", ["fast", "5 seconds", "5S", "-5s", "", "1e3s", None, [5], True])
def test_parse_duration_rejects_malformed(value):
    with pytest.raises(ValueError, match="expected a duration"):
        parse_duration(value)


@pytest.mark.parametrize("value", [-1, -0.5])
def test_parse_duration_rejects_negative_numbers(value):
    with pytest.raises(ValueError, match="cannot be negative"):
        parse_duration(value)


@pytest.mark.parametrize("value", [math.nan, math.inf])
def test_parse_duration_rejects_non_finite(value):
    with pytest.raises(ValueError):
        parse_duration(value)


def test_negative_duration_in_document():
    (problem,) = problems_of(edit("duration: 3s", "duration: -3"))
    assert "faults[0].duration: a duration cannot be negative" in problem


def test_zero_checkpoint_interval_rejected():
    (problem,) = problems_of(edit("checkpoint_interval: 1s", "checkpoint_interval: 0s"))
    assert "checkpoint_interval must be greater than zero" in problem


# --- documents that are not experiments ---------------------------------------------------------


def test_invalid_yaml_gives_line_and_column():
    text = "name: x\nseed: 1\nworkload:\n  records: 10\n rate: 5\n"  # `rate` is mis-indented
    (problem,) = problems_of(text)
    assert problem.startswith("line 5, column 2: invalid YAML: ")


def test_tab_indentation_gives_line_and_column():
    (problem,) = problems_of("name: x\nseed: 1\n\tworkload: {}\n")
    assert problem.startswith("line 3, column 1: invalid YAML: ")


@pytest.mark.parametrize("text", ["", "null\n", "just a string\n", "- a\n- b\n", "42\n"])
def test_non_mapping_document(text):
    (problem,) = problems_of(text)
    assert "must hold a mapping" in problem


def test_in_memory_profile_rejected_for_kafka_to_parquet():
    text = edit("profile: single-node-durable", "profile: in-memory")
    (problem,) = problems_of(text)
    assert problem.startswith(f"line {line_of(text, 'pipeline:')}: pipeline: ")
    assert "single-node-durable or distributed-durable" in problem


def test_distributed_durable_profile_accepted():
    x = parse_experiment(edit("profile: single-node-durable", "profile: distributed-durable"), "exp.yaml")
    assert x.pipeline.profile == "distributed-durable"


def test_unknown_profile_rejected():
    (problem,) = problems_of(edit("profile: single-node-durable", "profile: durable"))
    assert problem.startswith(f"line {line_of(BASE, 'profile:')}: pipeline.profile: ")


@pytest.mark.parametrize("name", ["Unit", "has space", "-leading-dash", ""])
def test_bad_experiment_name(name):
    (problem,) = problems_of(edit("name: unit", f"name: '{name}'"))
    assert problem.startswith("line 1: name: ")


def test_load_experiment_missing_file_is_a_spec_error(tmp_path):
    missing = tmp_path / "nope.yaml"
    with pytest.raises(SpecError) as info:
        load_experiment(missing)
    assert info.value.path == str(missing)
    assert info.value.problems[0].startswith("cannot read the file")


def test_load_experiment_directory_is_a_spec_error(tmp_path):
    with pytest.raises(SpecError):
        load_experiment(tmp_path)


def test_load_experiment_reports_the_path(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(edit("  records: 1000", "  recrods: 1000"))
    with pytest.raises(SpecError) as info:
        load_experiment(path)
    assert info.value.path == str(path)
    assert str(path) in str(info.value)


# --- the CLI ------------------------------------------------------------------------------------


def validate(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "chaos", "validate", *map(str, paths)],
                          cwd=REPO, capture_output=True, text=True, timeout=60,
                          env={**os.environ, "COLUMNS": "300", "NO_COLOR": "1"})


def test_cli_validate_broken_file(tmp_path):
    path = tmp_path / "broken.yaml"
    path.write_text(edit("    latency_ms: 200\n", "    latency_ms: 200\n    jiter_ms: 5\n"))
    result = validate(path)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert "broken.yaml" in result.stderr
    assert "faults[0].jiter_ms" in result.stderr
    assert "unknown key; did you mean 'jitter_ms'?" in result.stderr


def test_cli_validate_good_file():
    result = validate(REPO / "experiments" / "quickstart.yaml")
    assert result.returncode == 0, result.stderr
    assert "ok" in result.stdout
    assert result.stderr == ""


def test_cli_validate_mixed_files_fails_but_reports_both(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("- not a mapping\n")
    result = validate(REPO / "experiments" / "quickstart.yaml", bad)
    assert result.returncode == 2
    assert "quickstart" in result.stdout
    assert "bad.yaml" in result.stderr and "must hold a mapping" in result.stderr


def test_cli_validate_missing_file(tmp_path):
    result = validate(tmp_path / "missing.yaml")
    assert result.returncode == 2
    assert "missing.yaml" in result.stderr and "cannot read the file" in result.stderr
    assert "Traceback" not in result.stderr


def test_cli_validate_key_that_looks_like_rich_markup(tmp_path):
    path = tmp_path / "markup.yaml"
    path.write_text(edit("seed: 7\n", 'seed: 7\n"x[/]": 1\n'))
    result = validate(path)
    assert "Traceback" not in result.stderr
    assert result.returncode == 2
    assert "x[/]: unknown key" in result.stderr


@pytest.mark.parametrize("fault,attributes", [
    ("kind: latency\n    latency_ms: 5\n    jitter_ms: 1", {"latency": 5, "jitter": 1}),
    ("kind: bandwidth\n    rate_kbps: 10", {"rate": 10}),
    ("kind: slow_close\n    delay_ms: 100", {"delay": 100}),
    ("kind: timeout\n    timeout_ms: 250", {"timeout": 250}),
    ("kind: reset_peer\n    timeout_ms: 10", {"timeout": 10}),
    ("kind: slicer\n    average_size: 8\n    size_variation: 2\n    delay_us: 5",
     {"average_size": 8, "size_variation": 2, "delay": 5}),
    ("kind: limit_data\n    bytes: 1000", {"bytes": 1000}),
])
def test_every_toxic_kind_maps_to_toxiproxy_attributes(fault, attributes):
    text = ("name: t\nseed: 1\nworkload:\n  records: 10\n  rate: 10\nfaults:\n"
            f"  - at: 1s\n    target: worker-kafka\n    duration: 1s\n    {fault}\n    direction: upstream\n")
    (parsed,) = parse_experiment(text, "t.yaml").faults
    assert parsed.toxic_attributes() == attributes
    assert parsed.direction == "upstream"


@pytest.mark.parametrize("kind", ["kill", "terminate", "pause"])
def test_process_faults_target_processes_not_links(kind):
    text = ("name: t\nseed: 1\nworkload:\n  records: 10\n  rate: 10\nfaults:\n"
            f"  - at: 1s\n    target: worker-kafka\n    duration: 1s\n    kind: {kind}\n")
    (problem,) = problems_of(text)
    assert "unknown process 'worker-kafka'" in problem


# --- service faults: the broker and PostgreSQL may be paused, killed or terminated -------------

SERVICE_BASE = """\
name: svc
seed: 1
pipeline:
  source: kafka-transactional
  sink: parquet-2pc
  profile: distributed-durable
workload:
  records: 100
  rate: 10
faults:
  - kind: {kind}
    target: {target}
    at: 1s
    duration: 2s
"""


@pytest.mark.parametrize("kind", ["kill", "terminate", "pause"])
@pytest.mark.parametrize("target", ["kafka", "postgres"])
def test_services_may_be_killed_terminated_or_paused(kind, target):
    (fault,) = parse_experiment(SERVICE_BASE.format(kind=kind, target=target), "x.yaml").faults
    assert (fault.kind, fault.target, fault.at, fault.duration) == (kind, target, 1.0, 2.0)


def test_the_service_restarts_experiment_validates():
    x = load_experiment(REPO / "experiments" / "service-restarts.yaml")
    assert sorted((f.kind, f.target) for f in x.faults) == [("kill", "kafka"), ("terminate", "postgres")]
    windows = sorted((f.after_ready, f.after_ready + f.duration) for f in x.faults)
    assert windows[0][1] < windows[1][0], "the two service faults must not overlap"


@pytest.mark.parametrize("kind", ["kill", "terminate"])
def test_killing_postgres_still_needs_the_distributed_durable_profile(kind):
    text = SERVICE_BASE.format(kind=kind, target="postgres").replace(
        "source: kafka-transactional\n  sink: parquet-2pc\n  profile: distributed-durable",
        "source: kafka\n  sink: parquet\n  profile: single-node-durable")
    (problem,) = problems_of(text)
    assert problem.endswith("faults[0].target: postgres is only used by the distributed-durable profile")
    assert problem.startswith("line ")


@pytest.mark.parametrize("fault", ["kind: disk\n    mode: eio", "kind: crash\n    point: sink.commit.mid",
                                   "kind: latency\n    latency_ms: 10"])
def test_services_are_not_targets_of_disk_crash_or_network_faults(fault):
    text = ("name: t\nseed: 1\nworkload:\n  records: 10\n  rate: 10\nfaults:\n"
            f"  - at: 1s\n    target: kafka\n    duration: 1s\n    {fault}\n")
    problems = problems_of(text)
    assert any("unknown" in p and "'kafka'" in p for p in problems), problems


# --- the schedule run is the schedule written -----------------------------------------------------

CRASHES = """\
  - kind: crash
    point: sink.prepare.after
    hit: 2
  - kind: crash
    point: sink.prepare.after
    hit: 5
    target: {process}
"""


def test_a_second_crash_on_the_same_point_and_process_is_refused_not_merged():
    text = edit("expect:\n", CRASHES.format(process="worker-0") + "expect:\n")
    problems = problems_of(text)
    assert problems == [f"line {line_of(text, 'hit: 5') - 1}: faults[3].point: worker-0 already crashes at "
                        "sink.prepare.after (faults[2]); a process arms one hit per crash point, so this one "
                        "would replace it"]


def test_crashes_on_the_same_point_in_different_processes_are_all_armed():
    text = edit("expect:\n", CRASHES.format(process="worker-1") + "expect:\n",
                edit("records: 1000", "records: 1000\n  partitions: 2",
                     edit("checkpoint_interval: 1s", "checkpoint_interval: 1s\n  workers: 2")))
    assert parse_experiment(text, "exp.yaml").crash_points() == {
        "worker-0": {"sink.prepare.after": 2}, "worker-1": {"sink.prepare.after": 5}}
