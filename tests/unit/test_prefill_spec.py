"""`workload.prefill`: accepted where a producer feeds the source, refused (naming the field) where
the input is written before the job anyway, and with a record-count trigger, which would fire at once."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from chaos.errors import SpecError
from chaos.experiment.loader import parse_experiment
from chaos.experiment.models import Experiment

SPEC = """\
name: unit
seed: 7
pipeline:
  source: {source}
  sink: {sink}
workload:
  records: 1000
  rate: 100
  prefill: true
faults:
  - after_ready: 1s
    kind: kill
    target: worker-0
    duration: 1s
"""


def problems_of(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_experiment(text, "exp.yaml")
    return info.value.problems


def test_a_kafka_source_takes_prefill():
    experiment = parse_experiment(SPEC.format(source="kafka", sink="parquet"), "exp.yaml")
    assert experiment.workload.prefill is True


def test_prefill_is_off_unless_asked():
    text = SPEC.format(source="kafka", sink="parquet").replace("  prefill: true\n", "")
    experiment = parse_experiment(text, "exp.yaml")
    assert experiment.workload.prefill is False


@pytest.mark.parametrize(("source", "sink"),
                         [("parquet-batch", "parquet"), ("memory-stream", "memory"), ("delta-batch", "delta-batch")])
def test_a_source_written_up_front_refuses_prefill(source, sink):
    (problem,) = problems_of(SPEC.format(source=source, sink=sink))
    assert problem.startswith("line 9: workload.prefill: ")
    assert f"the {source} source's input is all written before the job starts" in problem


def test_the_model_refuses_it_too():
    data = {"name": "unit", "seed": 7, "pipeline": {"source": "parquet-batch", "sink": "parquet"},
            "workload": {"records": 10, "rate": 10, "prefill": True}}
    with pytest.raises(ValidationError, match=r"workload\.prefill: the parquet-batch source"):
        Experiment.model_validate(data)


def test_a_record_count_trigger_is_refused_with_prefill():
    text = SPEC.format(source="kafka", sink="parquet").replace("  - after_ready: 1s\n", "  - at_records: 500\n")
    (problem,) = problems_of(text)
    assert problem.startswith("line 11: faults[0].at_records: with workload.prefill every record is produced "
                              "before the pipeline starts")
    parse_experiment(text.replace("  prefill: true\n", ""), "exp.yaml")  # fine without prefill
