"""Runs one experiment end to end: environment, pipeline, workload, faults, drain, checks, report.

Everything started here is stopped in reverse order by one ExitStack, on success, on failure and
on Ctrl-C: faults are healed, the pipeline is stopped, and an environment started for this run
is torn down.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import shutil
import sys
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from confluent_kafka import KafkaException
from confluent_kafka.admin import NewTopic
import pyarrow.parquet as pq
from rich.console import Console

from chaos.checkers.duplicates import check_duplicates
from chaos.checkers.loss import check_loss
from chaos.checkers.phantoms import check_phantoms
from chaos.checkers.source_acks import check_source_acks
from chaos.checkers.verdict import Verdict
from chaos.env.environment import Environment
from chaos.env.paths import default_env_file
from chaos.env.processes import ManagedProcess, tail
from chaos.errors import EXIT_OK, EXIT_VIOLATION, EnvironmentFailure, SpecError
from chaos.history import History
from chaos.live import LiveProgress
from chaos.matrix import ROWS
from chaos.readers import OffsetProbe, read_parquet_output, read_topic, table_digest
from chaos.report import print_verdicts, write_result
from chaos.spec import Experiment, load_experiment
from chaos.supervisor import Supervisor
from chaos.workload import records
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress, run_workload
from faults.schedule import FaultSchedule


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: str
    verdicts: list[Verdict]

    @property
    def exit_code(self) -> int:
        return EXIT_OK if self.status == "pass" else EXIT_VIOLATION


def run_file(path: Path, runs_dir: Path, env_file: Path | None, private: bool, console: Console) -> RunResult:
    experiment = load_experiment(path)
    row = experiment.pipeline.row
    if not row.runnable:
        raise SpecError(str(path), [
            f"pipeline: {row.describe()} is in the guarantee matrix, but this version cannot run it yet "
            f"(runnable now: {', '.join(r.describe() for r in ROWS if r.runnable)})"])
    run_dir = _new_run_dir(runs_dir, experiment.name)
    shutil.copyfile(path, run_dir / "experiment.yaml")
    with ExitStack() as stack:
        log = logging.FileHandler(run_dir / "logs" / "harness.log")
        log.setFormatter(logging.Formatter("%(asctime)s %(name)s %(levelname)s %(message)s"))
        logging.getLogger("chaos").addHandler(log)
        stack.callback(logging.getLogger("chaos").removeHandler, log)
        env = _acquire_environment(None if private else env_file, private, run_dir, stack, console)
        return Run(experiment, run_dir, env, console).execute()


def _new_run_dir(runs_dir: Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir.resolve() / f"{name}-{stamp}-{secrets.token_hex(2)}"
    (run_dir / "logs").mkdir(parents=True)
    return run_dir


def _acquire_environment(env_file: Path | None, private: bool, run_dir: Path, stack: ExitStack,
                         console: Console) -> Environment:
    """Attach to a shared environment when there is one, otherwise start one for this run only."""
    shared = env_file or default_env_file()
    if not private and (env_file is not None or shared.exists()):
        try:
            env = Environment.attach(shared)
            console.print(f"attached to the environment in {shared}")
            return env
        except Exception:
            if env_file is not None:
                raise
            console.print(f"[yellow]the shared environment in {shared} is not healthy; starting a private one[/]")
    console.print("starting Kafka and Toxiproxy for this run ...")
    env = Environment.start(run_dir / "env")
    stack.callback(env.stop)
    return env


class Run:
    def __init__(self, experiment: Experiment, run_dir: Path, env: Environment, console: Console):
        self.x = experiment
        self.run_dir = run_dir
        self.env = env
        self.console = console
        self.run_id = run_dir.name
        self.topic = f"chaos-{self.run_id}-input"
        self.group = f"chaos-{self.run_id}-pipeline"
        self.history = History(run_dir / "history.jsonl", source="harness")
        self.progress = WorkloadProgress()
        self.source_digest = ""
        self.offsets: OffsetProbe  # opened for the run's duration in _execute

    def execute(self) -> RunResult:
        try:
            return self._execute()
        except KafkaException as e:
            raise EnvironmentFailure(f"Kafka failed during the run: {e}", tail(self.env.state.logs / "server.log")) from e

    def _execute(self) -> RunResult:
        x = self.x
        self._prepare()
        with ExitStack() as stack:
            stack.callback(self.history.close)
            self.offsets = OffsetProbe(self.env.bootstrap_direct, self.group, self.topic, x.workload.partitions)
            stack.callback(self.offsets.close)
            supervisor = Supervisor(self.history, restart_delay=1.0)
            stack.callback(supervisor.stop_all)
            supervisor.start("pipeline", self._pipeline_factory())
            schedule = FaultSchedule(x.faults, self.env.toxiproxy, supervisor, self.history, self.progress)
            stack.callback(schedule.close)
            outcome = self._drive(schedule)
            pq.write_table(outcome.outcomes, self.run_dir / "workload.parquet")
            last_fault = max((f.at or 0) + f.duration for f in x.faults) if x.faults else 0
            schedule.wait(timeout=last_fault + 30)
            schedule.close()
            drained, drain_seconds = self._drain()
            codes = supervisor.stop_all()
            self.history.append("run.checking", drained=drained, pipeline_exit=codes.get("pipeline"))
            verdicts = self._check(outcome, drained, drain_seconds, schedule.errors)
            result = write_result(
                self.run_dir, verdicts, experiment=x.name, run_id=self.run_id, seed=x.seed,
                workload_digest=records.digest(x.workload, x.seed), source_digest=self.source_digest,
                topic=self.topic,
                pipeline_restarts=supervisor.restarts("pipeline"),
                workload_seconds=round(outcome.seconds, 3), drain_seconds=round(drain_seconds, 3),
            )
        print_verdicts(self.console, x.name, verdicts, self.run_dir)
        return RunResult(self.run_dir, result["status"], verdicts)

    def _prepare(self) -> None:
        x = self.x
        self.env.reset()
        admin = self.env.admin()
        topic = NewTopic(self.topic, num_partitions=x.workload.partitions, replication_factor=1)
        admin.create_topics([topic], operation_timeout=30)[self.topic].result(timeout=60)
        for log in self.env.log_files():
            link = self.run_dir / "logs" / log.name
            if not link.exists() and log.parent != self.run_dir / "logs":
                link.symlink_to(log.resolve())
        (self.run_dir / "resolved.json").write_text(json.dumps({
            "experiment": x.model_dump(mode="json"),
            "run_id": self.run_id, "topic": self.topic, "group": self.group,
            "links": {n: self.env.bootstrap(n) for n in self.env.state.kafka_links},
            "schedule": [f.model_dump(mode="json") for f in x.faults],
        }, indent=2))
        self.history.append("run.start", experiment=x.name, seed=x.seed, run_id=self.run_id)

    def _pipeline_factory(self):
        config = {
            "bootstrap": self.env.bootstrap("worker-kafka"), "topic": self.topic, "group_id": self.group,
            "output_dir": str(self.run_dir / "output"), "history_path": str(self.run_dir / "history.jsonl"),
            "checkpoint_interval": self.x.pipeline.checkpoint_interval, "mutant": self.x.pipeline.mutant,
        }
        config_path = self.run_dir / "pipeline.json"
        config_path.write_text(json.dumps(config, indent=2))
        repo_root = Path(__file__).resolve().parent.parent
        env = dict(os.environ, PYTHONPATH=str(repo_root), PYTHONUNBUFFERED="1")

        def start(incarnation: int) -> ManagedProcess:
            return ManagedProcess("pipeline", [sys.executable, "-m", "drivers.kafka_parquet", str(config_path)],
                                  self.run_dir / "logs" / f"pipeline-{incarnation}.log", cwd=repo_root, env=env)
        return start

    def _committed(self) -> int:
        return sum(max(o, 0) for o in self.offsets.committed().values())

    def _drive(self, schedule: FaultSchedule) -> WorkloadOutcome:
        """Produce the workload in a thread while the schedule fires faults and the display updates."""
        stop = threading.Event()
        box: dict[str, object] = {}

        def produce() -> None:
            try:
                box["outcome"] = run_workload(self.x.workload, self.x.seed, self.env.bootstrap("workload-kafka"),
                                              self.topic, self.history, self.progress, stop)
            except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                box["error"] = e
                self.progress.done.set()

        producer = threading.Thread(target=produce, name="workload", daemon=True)
        schedule.start()
        producer.start()
        try:
            with LiveProgress(self.console, self.x.workload.records) as live:
                while not self.progress.done.wait(0.5):
                    live.update(self.progress, self._committed(), schedule.active())
                live.update(self.progress, self._committed(), schedule.active())
        finally:
            stop.set()
            producer.join(120)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box["outcome"]  # type: ignore[return-value]

    def _drain(self) -> tuple[bool, float]:
        """Wait until the pipeline has committed everything the topic holds, within the bound."""
        start = time.monotonic()
        deadline = start + self.x.expect.drain_timeout
        while time.monotonic() < deadline:
            ends = self.offsets.ends()
            done = self.offsets.committed()
            if all(done.get(p, -1) >= end for p, end in ends.items() if end > 0):
                self.history.append("run.drained", seconds=round(time.monotonic() - start, 3))
                return True, time.monotonic() - start
            time.sleep(0.5)
        self.history.append("run.drain_timeout", seconds=self.x.expect.drain_timeout)
        return False, time.monotonic() - start

    def _check(self, outcome: WorkloadOutcome, drained: bool, drain_seconds: float, fault_errors: list[str]) -> list[Verdict]:
        x = self.x
        truth = read_topic(self.env.bootstrap_direct, self.topic)
        self.source_digest = table_digest(truth.select(["id", "key", "checksum"]))
        output = read_parquet_output(self.run_dir / "output")
        expected = records.expected_table(x.workload, x.seed)
        verdicts = [
            check_loss(truth, output, required=x.requires_no_loss),
            check_duplicates(output, forbidden=x.forbids_duplicates),
        ]
        if x.expect.no_phantoms:
            verdicts.append(check_phantoms(expected, output))
        verdicts.append(check_source_acks(outcome.outcomes, truth))
        verdicts.append(Verdict(
            "drained", "pass" if drained else "fail",
            f"the pipeline caught up {drain_seconds:.1f}s after the workload" if drained
            else f"the pipeline had not caught up after {x.expect.drain_timeout:.0f}s",
            {"drain_ms": int(drain_seconds * 1000)}))
        if fault_errors:
            verdicts.append(Verdict("faults-applied", "fail", "; ".join(fault_errors), {"errors": len(fault_errors)}))
        return verdicts
