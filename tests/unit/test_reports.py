"""junit.xml and report.html from a synthetic run directory: counts, failures, the SVG timeline, links."""

from __future__ import annotations

import json
import re
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

from drivers.sdk.history import read_history
from chaos.report.charts import checkpoint_series
from chaos.report.html import write_html
from chaos.report.timeline import Timeline, timeline_svg
from chaos.report.junit import write_junit

T0 = 1_795_943_484.0
LOGS = ["coordinator-1.log", "harness.log", "worker-0-1.log", "worker-0-2.log", "worker-1-1.log", "worker-1-2.log"]
# (seconds after run.start, event, fields)
EVENTS: list[tuple[float, str, dict[str, Any]]] = [
    (0.0, "run.start", {"experiment": "synthetic", "seed": 7, "run_id": "synthetic-1"}),
    (0.1, "process.start", {"process": "coordinator", "pid": 100, "incarnation": 1}),
    (0.2, "process.start", {"process": "worker-0", "pid": 101, "incarnation": 1}),
    (0.3, "process.start", {"process": "worker-1", "pid": 102, "incarnation": 1}),
    (0.4, "workload.start", {"records": 12000, "rate": 1200.0, "topic": "t"}),
    (1.1, "worker.restored", {"worker": 0, "checkpoint_id": None, "recommitted": 0, "pid": 101}),
    (1.2, "worker.restored", {"worker": 1, "checkpoint_id": None, "recommitted": 0, "pid": 102}),
    (1.25, "pipeline.ready", {"processes": ["coordinator", "worker-0", "worker-1"]}),
    (2.0, "fault.inject", {"index": 0, "produced": 1900, "at": 1.6, "duration": 3.0, "kind": "partition",
                           "target": "worker-kafka", "direction": "both"}),
    (3.3, "crash", {"process": "worker-0", "point": "source.ack.before", "hit": 4}),
    (3.35, "process.exit", {"process": "worker-0", "pid": 101, "code": 86}),
    (4.0, "fault.inject", {"index": 1, "produced": 4300, "at": 3.6, "duration": 5.0, "kind": "latency",
                           "target": "workload-kafka", "latency_ms": 50}),
    (4.4, "process.start", {"process": "worker-0", "pid": 103, "incarnation": 2}),
    (5.2, "worker.restored", {"worker": 0, "checkpoint_id": 4, "recommitted": 1, "pid": 103}),
    (5.0, "fault.heal", {"index": 0, "kind": "partition", "target": "worker-kafka"}),
    (6.0, "fault.inject", {"index": 2, "produced": 6700, "at": 5.6, "duration": 1.0, "kind": "kill",
                           "target": "worker-1"}),
    (6.0, "process.kill", {"process": "worker-1", "pid": 102}),
    (7.0, "fault.heal", {"index": 2, "kind": "kill", "target": "worker-1"}),
    (7.1, "process.start", {"process": "worker-1", "pid": 104, "incarnation": 2}),
    (9.0, "fault.heal", {"index": 1, "kind": "latency", "target": "workload-kafka"}),
    (10.4, "workload.end", {"produced": 12000, "acked": 12000, "failed": 0, "indeterminate": 0, "seconds": 10.0}),
    (11.0, "run.drained", {"seconds": 0.6}),
    (11.3, "process.stop", {"process": "worker-1", "code": 0}),
    (11.3, "process.stop", {"process": "worker-0", "code": 0}),
    (11.3, "process.stop", {"process": "coordinator", "code": 0}),
]


def checkpoint_events() -> list[tuple[float, str, dict[str, Any]]]:
    """A checkpoint every second, rewinding after worker-0's crash; round 5 is abandoned."""
    events = []
    for n in range(1, 11):
        t = 0.5 + n
        if n == 5:
            events.append((t, "checkpoint.abandoned", {"checkpoint_id": n, "why": "worker lost"}))
            continue
        offset = 600 * n if n != 6 else 1500
        events.append((t, "checkpoint.persisted", {"checkpoint_id": n, "handles": 2,
                                                    "positions": {"0": {"0": offset}, "1": {"1": offset}}}))
        events.append((t + 0.05, "checkpoint.committed", {"checkpoint_id": n}))
    return events


def verdicts(failed: bool) -> list[dict[str, Any]]:
    loss = ({"invariant": "no-loss", "status": "fail", "summary": "3 of 12000 source records are missing <&>",
             "counts": {"source_records": 12000, "lost": 3}, "examples": [17, 18, 4242]} if failed else
            {"invariant": "no-loss", "status": "pass", "summary": "all 12000 source records are in the output",
             "counts": {"source_records": 12000, "lost": 0}, "examples": []})
    return [loss,
            {"invariant": "duplicates", "status": "info", "summary": "40 records appear more than once",
             "counts": {"output_records": 12040, "duplicated_ids": 40, "extra_copies": 40}, "examples": [1, 2]},
            {"invariant": "no-phantoms", "status": "pass", "summary": "every output record was produced and is intact",
             "counts": {"phantoms": 0, "corrupted": 0}, "examples": []}]


def make_run_dir(run_dir: Path, failed: bool = True) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """A run directory with a history, result.json and empty logs; returns (result, history)."""
    (run_dir / "logs").mkdir(parents=True)
    for name in LOGS:
        (run_dir / "logs" / name).write_text(f"{name}\n")
    events = sorted(EVENTS + checkpoint_events(), key=lambda e: e[0])
    with (run_dir / "history.jsonl").open("w") as f:
        for t, event, fields in events:
            source = ("coordinator" if event.startswith("checkpoint") else f"worker-{fields['worker']}"
                      if event == "worker.restored" else fields.get("process", "harness"))
            f.write(json.dumps({"ts": T0 + t, "source": source, "event": event, **fields}) + "\n")
    (run_dir / "schedule.txt").write_text("#  at  heal  kind  target\n")
    result = {"schema_version": 2, "status": "violation" if failed else "pass", "experiment": "synthetic",
              "run_id": "synthetic-1", "seed": 7, "pipeline": "kafka -> parquet (single-node-durable)",
              "guarantee": "at least once", "restarts": {"coordinator": 0, "worker-0": 1, "worker-1": 1},
              "workload_seconds": 10.0, "drain_seconds": 0.6, "verdicts": verdicts(failed),
              "crash_points": {"worker-0": {"source.ack.before": 4}, "worker-1": {"sink.commit.after": 2}}}
    (run_dir / "result.json").write_text(json.dumps(result, indent=2))
    return result, read_history(run_dir / "history.jsonl")


def build_reports(run_dir: Path, failed: bool = True) -> tuple[Path, Path]:
    result, history = make_run_dir(run_dir, failed)
    return write_junit(run_dir, result), write_html(run_dir, result, history)


def test_junit_counts_and_failure(tmp_path: Path) -> None:
    junit, _ = build_reports(tmp_path)
    root = ET.parse(junit).getroot()
    suites = root.findall("testsuite")
    assert len(suites) == 1
    suite = suites[0]
    assert suite.get("name") == "synthetic"
    assert (suite.get("tests"), suite.get("failures"), suite.get("errors")) == ("3", "1", "0")
    assert abs(float(suite.get("time")) - 11.3) < 0.01
    cases = {c.get("name"): c for c in suite.findall("testcase")}
    assert list(cases) == ["no-loss", "duplicates", "no-phantoms"]
    assert all(c.get("classname") == "chaos.synthetic" for c in cases.values())
    failure = cases["no-loss"].find("failure")
    assert failure is not None
    assert failure.get("message") == "3 of 12000 source records are missing <&>"
    assert "lost: 3" in failure.text and "17, 18, 4242" in failure.text
    assert cases["duplicates"].find("failure") is None
    assert "40 records appear more than once" in cases["duplicates"].find("system-out").text
    assert cases["no-phantoms"].find("failure") is None and cases["no-phantoms"].find("system-out") is None


def test_junit_passing_run_has_no_failure(tmp_path: Path) -> None:
    junit, _ = build_reports(tmp_path, failed=False)
    root = ET.parse(junit).getroot()
    assert root.find("testsuite").get("failures") == "0"
    assert root.findall(".//failure") == []
    assert len(root.findall(".//testcase")) == 3


def test_junit_without_history_uses_result_seconds(tmp_path: Path) -> None:
    result = {"experiment": "x", "workload_seconds": 2.5, "drain_seconds": 0.5,
              "verdicts": [{"invariant": "no-loss", "status": "pass", "summary": "ok"}]}
    suite = ET.parse(write_junit(tmp_path, result)).getroot().find("testsuite")
    assert suite.get("time") == "3.000" and suite.get("tests") == "1"


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.hrefs: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.hrefs += [v for k, v in attrs if k in ("href", "src") and v]


def test_html_report(tmp_path: Path) -> None:
    _, report = build_reports(tmp_path)
    page = report.read_text()
    assert page.startswith("<!DOCTYPE html>")
    # header: the outcome, and why, above everything else
    assert 'id="overall">VIOLATION<' in page
    why = page[page.index('id="why"'):page.index("</div>", page.index('id="why"'))]
    assert "Why it failed" in why and "<code>no-loss</code>: 3 of 12000 source records are missing" in why
    assert "duplicates" not in why, "only the failing verdicts explain the failure"
    assert page.index('id="why"') < page.index('<svg class="timeline"')
    for text in ("synthetic", "kafka -&gt; parquet (single-node-durable)", "at least once", "<dd>7</dd>"):
        assert text in page
    # timeline: one shaded band per healed fault, labelled; a crash marker in worker-0's lane
    timeline = page[page.index('<svg class="timeline"'):]
    timeline = timeline[:timeline.index("</svg>")]
    assert sorted(re.findall(r'class="fault-band" data-index="(\d+)"', timeline)) == ["0", "1", "2"]
    for label in ("partition worker-kafka", "latency workload-kafka", "kill worker-1"):
        assert f">{label}</text>" in timeline
    assert timeline.count('class="marker crash"') == 1
    assert "worker-0 crashed at source.ack.before" in timeline
    assert timeline.count('class="marker kill"') == 1
    assert timeline.count('class="marker exit"') == 1
    assert timeline.count('class="marker restart"') == 2
    # workers joining, the pipeline's ready moment, and the armed crash point that never fired
    assert timeline.count('class="marker joined"') == 3 and "worker-0 joined, restored checkpoint 4" in timeline
    assert timeline.count('class="ready-line"') == 1 and "the pipeline is ready" in timeline
    assert "armed, never fired: sink.commit.after (hit 2)" in timeline
    assert "source.ack.before (hit 4)" not in timeline.split("armed, never fired")[-1], "it fired"
    # checkpoints: 9 persisted points, 9 commit ticks, 1 abandoned tick
    progress = page[page.index('<svg class="progress"'):]
    progress = progress[:progress.index("</svg>")]
    assert progress.count('class="point"') == 9
    assert progress.count('class="commit"') == 9 and progress.count('class="abandoned"') == 1
    assert '<svg class="throughput"' in page
    # verdict rows, escaped
    assert page.count('<tr class="verdict ') == 3
    assert '<tr class="verdict fail">' in page and '<tr class="verdict info">' in page
    assert "missing &lt;&amp;&gt;" in page and "missing <&>" not in page
    assert "17, 18, 4242" in page
    # links are relative and resolve; self-contained
    parser = _Links()
    parser.feed(page)
    assert {f"logs/{name}" for name in LOGS} | {"history.jsonl", "result.json", "junit.xml",
                                                "schedule.txt"} <= set(parser.hrefs)
    assert all((tmp_path / href).exists() for href in parser.hrefs)
    assert "http://" not in page and "https://" not in page
    assert "<script" not in page and "url(" not in page and "@import" not in page


def test_html_report_passing_run(tmp_path: Path) -> None:
    _, report = build_reports(tmp_path, failed=False)
    page = report.read_text()
    assert 'id="overall">PASS<' in page and '<tr class="verdict fail">' not in page and 'id="why"' not in page


def test_an_inconclusive_run_says_so_in_the_report_and_in_junit_as_an_error(tmp_path: Path) -> None:
    result, history = make_run_dir(tmp_path, failed=False)
    result["status"] = "inconclusive"
    result["verdicts"].append({"invariant": "faults-applied", "status": "inconclusive",
                               "summary": "crash point sink.commit.after in worker-1 never fired", "counts": {}})
    page = write_html(tmp_path, result, history).read_text()
    assert 'id="overall">INCONCLUSIVE<' in page and "Why it is inconclusive" in page
    assert "<code>faults-applied</code>: crash point sink.commit.after in worker-1 never fired" in page
    suite = ET.parse(write_junit(tmp_path, result)).getroot().find("testsuite")
    assert (suite.get("failures"), suite.get("errors")) == ("0", "1")
    (error,) = suite.findall(".//error")
    assert error.get("type") == "Inconclusive" and suite.findall(".//failure") == []


def test_a_fault_that_met_no_traffic_is_hatched_and_says_why() -> None:
    history = [{"ts": 0.0, "event": "run.start"}, {"ts": 5.0, "event": "pipeline.ready"},
               {"ts": 2.0, "event": "fault.inject", "index": 0, "kind": "partition", "target": "worker-kafka"},
               {"ts": 4.0, "event": "fault.heal", "index": 0, "kind": "partition", "target": "worker-kafka"}]
    (band,) = Timeline.of(history).bands
    assert band.quiet == "it was over before the pipeline was ready"
    assert band.label.endswith("(no traffic)") and "met no pipeline traffic" in band.tip


def test_long_fault_labels_are_cut_and_kept_whole_in_the_tooltip() -> None:
    history = [{"ts": 0.0, "event": "run.start"}, {"ts": 0.5, "event": "pipeline.ready"},
               {"ts": 1.0, "event": "fault.inject", "index": 0, "kind": "slow_close", "target": "coordinator-store"}]
    timeline = Timeline.of(history)
    svg = timeline_svg(timeline)
    (band,) = timeline.bands
    assert len(band.label) > 40 and band.label not in svg.split("<title>")[0]
    assert "\u2026</text>" in svg and band.label in svg


def test_unhealed_fault_runs_to_the_end() -> None:
    history = [{"ts": 10.0, "event": "run.start"},
               {"ts": 12.0, "event": "fault.inject", "index": 0, "kind": "down", "target": "worker-kafka"},
               {"ts": 20.0, "event": "run.checking"}]
    (band,) = Timeline.of(history).bands
    assert (band.start, band.end, band.healed) == (2.0, 10.0, False)
    assert band.label == "down worker-kafka (not healed) (no traffic)"  # no pipeline was ever ready


def test_checkpoint_series_sums_integer_positions() -> None:
    history = [{"ts": 0.0, "event": "run.start"},
               {"ts": 1.0, "event": "checkpoint.persisted", "checkpoint_id": 1, "positions": {"0": {}, "1": {}}},
               {"ts": 2.0, "event": "checkpoint.persisted", "checkpoint_id": 2,
                "positions": {"0": {"a.parquet": 4, "b.parquet": 3}, "1": {"next": 10}}},
               {"ts": 3.0, "event": "checkpoint.persisted", "checkpoint_id": 3, "positions": {"0": {"x": "lsn/12"}}}]
    label, series = checkpoint_series(Timeline.of(history))
    assert label == "source position (sum)"
    assert [(t, v) for t, v, _ in series] == [(1.0, 0.0), (2.0, 17.0)]


def test_checkpoint_series_falls_back_to_ids() -> None:
    history = [{"ts": 0.0, "event": "run.start"},
               {"ts": 1.0, "event": "checkpoint.persisted", "checkpoint_id": 1, "positions": {"0": {"x": "a"}}},
               {"ts": 2.0, "event": "checkpoint.persisted", "checkpoint_id": 2, "positions": {"0": {"x": "b"}}}]
    label, series = checkpoint_series(Timeline.of(history))
    assert label == "checkpoint id"
    assert [(t, v) for t, v, _ in series] == [(1.0, 1.0), (2.0, 2.0)]


def test_empty_history_still_renders(tmp_path: Path) -> None:
    result = {"status": "pass", "verdicts": []}
    page = write_html(tmp_path, result, []).read_text()
    assert "no fault was injected" in page and "no checkpoint was persisted" in page
    assert "no verdict was recorded" in page
