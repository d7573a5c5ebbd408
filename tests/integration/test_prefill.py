"""`workload.prefill`: the whole workload is in the topic before any pipeline process starts, and a
fault timed from the pipeline's readiness still fires, on a job that then works through a full topic.
(The job reads some 20,000 records a second here: the topic holds three seconds of its work, so that
a kill half a second after readiness meets it mid-topic.)"""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.integration

EXPERIMENT = """\
name: prefill
seed: 5
pipeline:
  source: kafka
  sink: parquet
  profile: single-node-durable
  checkpoint_interval: 500ms
workload:
  records: 60000
  rate: 1000000
  partitions: 3
  prefill: true
faults:
  - after_ready: 500ms
    kind: kill
    target: worker-0
    duration: 1s
expect:
  duplicates: allow
  drain_timeout: 120s
"""


def test_a_prefilled_run_produces_everything_before_the_pipeline_starts(run_experiment, tmp_path):
    path = tmp_path / "prefill.yaml"
    path.write_text(EXPERIMENT)
    run = run_experiment(path)
    assert run.code == 0, run.stdout + run.stderr
    assert run.result["status"] == "pass"
    history = run.history()
    order = [e["event"] for e in history]
    first_start = order.index("process.start")
    assert order.index("workload.start") < order.index("workload.end") < first_start
    end = next(e for e in history if e["event"] == "workload.end")
    assert end["produced"] == end["acked"] == 60000
    ready = next(e for e in history if e["event"] == "pipeline.ready")
    inject = next(e for e in history if e["event"] == "fault.inject")
    assert inject["target"] == "worker-0" and inject["ts"] >= ready["ts"]
    assert run.verdict("no-loss")["counts"] == {"source_records": 60000, "lost": 0}
