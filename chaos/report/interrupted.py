"""The result of a run cut short by Ctrl-C or SIGTERM: status `interrupted`, never a violation.

As Chaos Toolkit's journal does for an interrupted experiment, `result.json` still says what was
done: which faults were injected and healed (from the history), and the verdicts that could be
computed from what was read back once the faults were healed and the processes stopped. A run cut
short looks like loss (the input was not all consumed), like a stalled pipeline and like a drain
that never ended, so every `fail` is reported as `inconclusive`: the interrupt, not the connector,
explains it. Reading back is bounded in time, and a second interrupt abandons it: the result then
has no verdicts. CI tells such a run from a crashed harness (no `result.json`) and from a verdict.
"""

from __future__ import annotations

import dataclasses
import logging
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pyarrow as pa
from rich.console import Console

from chaos.checkers.verdict import Verdict
from chaos.checks import CHECKS, RunEvidence
from chaos.experiment import Experiment
from chaos.interrupt import RunInterrupted, repeated, signal_name
from chaos.report.html import write_html
from chaos.report.junit import write_junit
from chaos.report.result import Outcome, print_verdicts, write_result
from drivers.sdk.events import Event
from drivers.sdk.history import read_history

CHECK_SECONDS = 60.0
"""How long reading the output back and checking it may take before the result is written without
verdicts: a CI system's SIGTERM is followed by a SIGKILL."""

log = logging.getLogger("chaos.interrupted")


def fault_record(history: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The faults injected during the run, as (healed, not healed): a heal that failed or never ran
    leaves its fault in the second list. Times are seconds since `run.start`."""
    start = next((float(e["ts"]) for e in history if e.get("event") == Event.RUN_START), 0.0)
    injected: dict[int, dict[str, Any]] = {}
    for event in history:
        kind, index = event.get("event"), event.get("index")
        if kind == Event.FAULT_INJECT and index is not None:
            injected[int(index)] = {"index": int(index), "kind": event.get("kind"), "target": event.get("target"),
                                    "injected_at": round(float(event["ts"]) - start, 3)}
        elif kind == Event.FAULT_HEAL and index is not None and int(index) in injected:
            injected[int(index)]["healed_at"] = round(float(event["ts"]) - start, 3)
    faults = sorted(injected.values(), key=lambda f: f["index"])
    return [f for f in faults if "healed_at" in f], [f for f in faults if "healed_at" not in f]


def fault_errors(history: list[dict[str, Any]]) -> tuple[str, ...]:
    """What the schedule could not do, from the history (its own list died with the interrupt): the
    faults-applied check reads these."""
    errors = []
    for event in history:
        if event.get("event") == Event.FAULT_ERROR:
            errors.append(f"faults[{event.get('index')}] failed: {event.get('error')}")
        elif event.get("event") == Event.FAULT_SKIPPED:
            errors.append(f"faults[{event.get('index')}] ({event.get('kind')}) never fired: the run was interrupted "
                          "first")
    return tuple(errors)


def downgrade(verdicts: list[Verdict], signal: str) -> list[Verdict]:
    """Every `fail` becomes `inconclusive`, saying why: a run cut short proves no violation."""
    cut = f"the run was interrupted ({signal}) before it finished"
    return [v if not v.failed else dataclasses.replace(
        v, status="inconclusive",
        summary=f"{cut}, before the pipeline could drain" if v.invariant == "drained"
        else f"{cut}, so this proves nothing about the connector: {v.summary}") for v in verdicts]


def check_interrupted(experiment: Experiment, run_dir: Path, evidence: RunEvidence, signal: str) -> list[Verdict]:
    """`check_run` for an interrupted run: never drained, and a check that cannot be computed from
    what was left (the producer's outcomes died with the interrupt) is inconclusive, not an error."""
    history = evidence.history
    evidence = dataclasses.replace(evidence, drained=False, fault_errors=(*evidence.fault_errors, *fault_errors(history)))
    every = evidence.output  # every record, on time or late, as check_run judges them
    if evidence.late is not None:
        every = pa.concat_tables([evidence.output, evidence.late], promote_options="permissive")
    verdicts = []
    for check in CHECKS:
        if not check.applies(experiment):
            continue
        try:
            verdicts.append(check.run(experiment, run_dir, evidence, every))
        except Exception:  # what an interrupted run left may not be enough for every check
            log.warning("%s could not be checked on the interrupted run", check.invariant, exc_info=True)
            verdicts.append(Verdict(check.invariant, "inconclusive",
                                    f"the run was interrupted ({signal}) before what this check reads was recorded "
                                    "(the producer's outcomes, say)"))
    return downgrade(verdicts, signal)


def bounded_verdicts(work: Callable[[], list[Verdict]], timeout: float) -> tuple[list[Verdict], str | None]:
    """`work()`'s verdicts, or none and why: it failed, took over `timeout`, or a second interrupt
    came (the thread is a daemon, and is left behind)."""
    box: dict[str, Any] = {}

    def run() -> None:
        try:
            box["verdicts"] = work()
        except Exception as e:  # noqa: BLE001 - reported in result.json instead
            box["error"] = e

    thread = threading.Thread(target=run, name="interrupted-checks", daemon=True)
    thread.start()
    try:
        thread.join(timeout)
    except KeyboardInterrupt:
        return [], "a second interrupt stopped the checks"
    if thread.is_alive():
        return [], f"reading the output back took over {timeout:.0f}s"
    if "error" in box:
        return [], f"the output could not be read back: {type(box['error']).__name__}: {box['error']}"
    return box["verdicts"], None


def record_interrupted(run_dir: Path, interrupt: KeyboardInterrupt, experiment: Experiment,
                       read_evidence: Callable[[], RunEvidence] | None, console: Console,
                       restarts: dict[str, int] | None = None, timeout: float = CHECK_SECONDS) -> RunInterrupted:
    """Write `result.json` (and junit.xml, report.html) for an interrupted run, print its verdicts, and
    return the exception to raise. `read_evidence` is None when the run never started; a result
    already written (the interrupt came after the checks) is kept."""
    signal = signal_name(interrupt)
    healed, unhealed = fault_record(read_history(run_dir / "history.jsonl"))
    if (run_dir / "result.json").exists():
        return RunInterrupted(run_dir, signal, len(unhealed))
    verdicts: list[Verdict] = []
    skipped: str | None = "the run was interrupted before it started"
    if repeated(interrupt):
        skipped = "a second interrupt came during the cleanup"
    elif read_evidence is not None:
        verdicts, skipped = bounded_verdicts(
            lambda: check_interrupted(experiment, run_dir, read_evidence(), signal), timeout)
    pipeline = experiment.pipeline
    result = write_result(
        run_dir, verdicts, status=Outcome.INTERRUPTED, experiment=experiment.name, run_id=run_dir.name,
        seed=experiment.seed, pipeline=f"{pipeline.source} -> {pipeline.sink} ({pipeline.profile})",
        guarantee=pipeline.guarantee.label, restarts=restarts or {}, crash_points=experiment.crash_points(),
        interrupted_by=signal, healed_faults=healed, unhealed_faults=unhealed, verdicts_skipped=skipped)
    try:
        write_junit(run_dir, result)
        write_html(run_dir, result, read_history(run_dir / "history.jsonl"))
    except Exception:  # the reports are a convenience; result.json is written
        log.exception("could not write the reports of an interrupted run")
    print_verdicts(console, experiment.name, verdicts, run_dir, Outcome.INTERRUPTED)
    return RunInterrupted(run_dir, signal, len(unhealed))
