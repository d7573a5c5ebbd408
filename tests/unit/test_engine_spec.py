"""`pipeline.engine`: a black-box engine runs one of its connectors on the row that connector
implements, with its own processes and links, and without crash points or seeded bugs; each
mistake is refused naming the field."""

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
