"""`junit.xml`: the run's verdicts as JUnit XML, so that a CI system shows each invariant as a test.

One `<testsuite name=EXPERIMENT>` (inside a `<testsuites>` root) holds one
`<testcase classname="chaos.EXPERIMENT" name=INVARIANT>` per verdict. A `fail` verdict gets a
`<failure message=SUMMARY type="InvariantViolation">` whose body lists the counts and examples; an
`inconclusive` one gets an `<error type="Inconclusive">` instead, so that CI shows the experiment,
not the connector, as what went wrong; an `info` verdict passes, with its summary in `<system-out>`. The suite's time is the run's span in `history.jsonl`, or
the workload plus drain seconds of `result.json` when there is no history.
"""

from __future__ import annotations

import datetime as dt
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

from drivers.sdk.history import read_history

_PROPERTIES = ("run_id", "seed", "pipeline", "guarantee", "status", "workload_digest", "source_digest")


def _details(verdict: dict[str, Any]) -> str:
    lines = [str(verdict.get("summary", ""))]
    for name, value in (verdict.get("counts") or {}).items():
        lines.append(f"{name}: {value}")
    examples = verdict.get("examples") or []
    if examples:
        lines.append("examples: " + ", ".join(str(e) for e in examples))
    return "\n".join(lines)


def _timing(run_dir: Path, result: dict[str, Any]) -> tuple[float, str | None]:
    """The run's duration in seconds, and its start as an ISO timestamp when the history has one."""
    times = [e["ts"] for e in read_history(run_dir / "history.jsonl") if isinstance(e.get("ts"), (int, float))]
    if times:
        start = dt.datetime.fromtimestamp(min(times), dt.timezone.utc).replace(tzinfo=None)
        return max(times) - min(times), start.isoformat(timespec="seconds")
    seconds = 0.0
    for key in ("workload_seconds", "drain_seconds"):
        value = result.get(key)
        if isinstance(value, (int, float)):
            seconds += value
    return seconds, None


def build_junit(run_dir: Path, result: dict[str, Any]) -> ET.ElementTree:
    experiment = str(result.get("experiment") or run_dir.name)
    verdicts = list(result.get("verdicts") or [])
    failures = sum(1 for v in verdicts if v.get("status") == "fail")
    errors = sum(1 for v in verdicts if v.get("status") == "inconclusive")
    seconds, started = _timing(run_dir, result)
    counts = {"tests": str(len(verdicts)), "failures": str(failures), "errors": str(errors), "skipped": "0",
              "time": f"{seconds:.3f}"}

    root = ET.Element("testsuites", {"name": "chaos", **counts})
    suite = ET.SubElement(root, "testsuite", {"name": experiment, **counts})
    if started:
        suite.set("timestamp", started)
    properties = ET.SubElement(suite, "properties")
    for key in _PROPERTIES:
        if result.get(key) is not None:
            ET.SubElement(properties, "property", {"name": key, "value": str(result[key])})

    for verdict in verdicts:
        case = ET.SubElement(suite, "testcase", {
            "classname": f"chaos.{experiment}", "name": str(verdict.get("invariant", "?")), "time": "0",
        })
        status = verdict.get("status")
        if status == "fail":
            failure = ET.SubElement(case, "failure", {"message": str(verdict.get("summary", "")),
                                                      "type": "InvariantViolation"})
            failure.text = _details(verdict)
        elif status == "inconclusive":
            error = ET.SubElement(case, "error", {"message": str(verdict.get("summary", "")), "type": "Inconclusive"})
            error.text = _details(verdict)
        elif status == "info":
            ET.SubElement(case, "system-out").text = _details(verdict)
    ET.indent(root)
    return ET.ElementTree(root)


def write_junit(run_dir: Path, result: dict) -> Path:
    """Write `run_dir/junit.xml` from `result` (the dict `write_result` returns) and return its path."""
    path = run_dir / "junit.xml"
    tmp = run_dir / "junit.xml.tmp"
    build_junit(run_dir, result).write(tmp, encoding="utf-8", xml_declaration=True)
    tmp.replace(path)
    return path
