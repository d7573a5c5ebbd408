"""`pipeline.engine`: a black-box engine runs one of its connectors on the row that connector
implements, with its own processes and links, and without crash points or seeded bugs; `command`
runs the user's own processes, with the testbed's addresses filled in. Each mistake is refused
naming the field."""

from __future__ import annotations

import pytest

from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from chaos.experiment.topology import pipeline_links, pipeline_processes

PIPELINE = """\
  engine: kafka-connect
  connector: iceberg-sink
  source: kafka-transactional
  sink: iceberg-2pc
  profile: distributed-durable
  workers: 2
"""


def spec(pipeline: str = PIPELINE, faults: str = "") -> str:
    return (f"name: unit\nseed: 7\npipeline:\n{pipeline}workload:\n  records: 1000\n  rate: 100\n"
            + (f"faults:\n{faults}" if faults else ""))


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, "exp.yaml")
    return info.value.problems


def test_a_kafka_connect_pipeline_has_connect_workers_and_their_links():
    pipeline = parse_experiment(spec(), "exp.yaml").pipeline
    assert pipeline_processes(pipeline) == ["connect-0", "connect-1"]
    assert pipeline_links(pipeline) == ["workload-kafka", "worker-kafka", "worker-catalog"]


def test_the_native_engine_is_the_default_and_keeps_its_coordinator():
    pipeline = parse_experiment(spec("  source: kafka\n  sink: parquet\n"), "exp.yaml").pipeline
    assert pipeline.engine == "native"
    assert pipeline_processes(pipeline) == ["coordinator", "worker-0"]
    assert "worker-coordinator" in pipeline_links(pipeline)


@pytest.mark.parametrize(("change", "expected"), [
    (("engine: kafka-connect", "engine: kafka-conect"), "did you mean 'kafka-connect'"),
    (("connector: iceberg-sink", "connector: iceberg-sinc"), "did you mean 'iceberg-sink'"),
    (("  connector: iceberg-sink\n", ""), "needs `connector`"),
    (("sink: iceberg-2pc", "sink: delta-2pc"), "writes iceberg-2pc"),
    (("profile: distributed-durable", "profile: single-node-durable"), "distributed-durable"),
    (("  workers: 2\n", "  workers: 2\n  mutant: auto-commit\n"), "no seeded bugs"),
])
def test_a_black_box_pipeline_refuses_what_it_cannot_run(change, expected):
    problems = problems_of(spec(PIPELINE.replace(*change)))
    assert any(expected in p and "pipeline" in p for p in problems), problems


def test_a_connector_without_a_black_box_engine_is_refused():
    problems = problems_of(spec("  source: kafka\n  sink: parquet\n  connector: iceberg-sink\n"))
    assert any("set `engine` too" in p for p in problems), problems


def test_faults_aim_at_the_engines_processes_and_never_at_crash_points():
    kill = "  - at: 1s\n    kind: kill\n    target: {target}\n    duration: 1s\n"
    parse_experiment(spec(faults=kill.format(target="connect-1")), "exp.yaml")
    assert any("worker-0 is not in this pipeline" in p and "connect-0, connect-1" in p
               for p in problems_of(spec(faults=kill.format(target="worker-0"))))
    assert any("worker-coordinator is a link this pipeline does not have" in p
               for p in problems_of(spec(faults="  - at: 1s\n    kind: partition\n    target: worker-coordinator\n"
                                                "    duration: 1s\n")))
    crash = "  - kind: crash\n    target: connect-0\n    point: sink.commit.before\n"
    assert any("has no crash points" in p for p in problems_of(spec(faults=crash)))


def test_the_commit_coordinators_worker_is_a_role_only_a_connect_pipeline_has():
    kill = "  - at: 1s\n    kind: kill\n    target: connect-coordinator\n    duration: 1s\n"
    parse_experiment(spec(faults=kill), "exp.yaml")
    problems = problems_of(spec("  source: kafka\n  sink: parquet\n", faults=kill))
    assert any("connect-coordinator is a role this pipeline has no process for" in p for p in problems), problems


# --- engine: command ---

COMMAND = """\
  engine: command
  source: kafka
  sink: parquet
  commands:
    - argv: ["{python}", "copier.py", "--bootstrap", "{kafka}", "--output", "{sink.output_dir}"]
      ready: copier ready
    - argv: ["./job", "{topic}", "{group}", "{{literal}}"]
"""



def test_a_command_pipeline_has_one_process_per_command_and_our_workers_links():
    pipeline = parse_experiment(spec(COMMAND), "exp.yaml").pipeline
    assert pipeline_processes(pipeline) == ["command-0", "command-1"]
    assert pipeline_links(pipeline) == ["workload-kafka", "worker-kafka"]
    assert pipeline.commands[0].ready == "copier ready" and pipeline.commands[1].ready is None


def test_a_fault_targets_a_command_by_its_position():
    kill = "  - after_ready: 1s\n    kind: kill\n    target: command-1\n    duration: 1s\n"
    assert parse_experiment(spec(COMMAND, faults=kill), "exp.yaml").faults[0].target == "command-1"
    problems = problems_of(spec(COMMAND, faults=kill.replace("command-1", "command-2")))
    assert any("command-2" in p and "command-0, command-1" in p for p in problems), problems


@pytest.mark.parametrize(("change", "expected"), [
    (('"{topic}"', '"{topik}"'), "{topik}, which is not a placeholder"),
    (('"{topic}"', '"{topic!r}"'), "not a placeholder"),
    (('"{topic}"', '"{sink}"'), "not a placeholder"),
    (('"{topic}"', '"{topic"'), "literal braces"),
    (("ready: copier ready", "ready: copier (ready"), "not a regular expression"),
    (("source: kafka", "source: parquet-batch"), "reads kafka or kafka-transactional"),
    (("  sink: parquet\n", "  sink: parquet\n  workers: 3\n"), "one process per command (2)"),
    (("  sink: parquet\n", "  sink: parquet\n  connector: iceberg-sink\n"), "remove it"),
    (("  sink: parquet\n", "  sink: parquet\n  mutant: auto-commit\n"), "no seeded bugs"),
])
def test_a_command_pipeline_refuses_what_it_cannot_run(change, expected):
    problems = problems_of(spec(COMMAND.replace(*change)))
    assert any(expected in p and "pipeline" in p for p in problems), problems


def test_a_command_engine_needs_commands_and_commands_need_it():
    assert any("needs `commands`" in p for p in problems_of(spec("  engine: command\n  source: kafka\n")))
    native = "  source: kafka\n  commands:\n    - argv: [job]\n"
    assert any("set `engine: command`" in p for p in problems_of(spec(native)))


def test_a_crash_point_is_refused_inside_a_command_pipeline():
    crash = "  - kind: crash\n    target: command-0\n    point: sink.commit.before\n"
    assert any("no crash points" in p for p in problems_of(spec(COMMAND, faults=crash)))
