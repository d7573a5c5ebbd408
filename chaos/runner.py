"""Runs one experiment end to end: environment, pipeline, workload, faults, drain, checks, report.

Everything started here is stopped in reverse order by one ExitStack, on success, on failure and
on Ctrl-C: faults are healed, the pipeline is stopped, and an environment started for this run
is torn down.
"""

from __future__ import annotations

import json
import logging
import secrets
import shutil
import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Callable, TypeVar

import pyarrow.parquet as pq
from confluent_kafka import KafkaException
from rich.console import Console

from chaos.checkers.progress import drain_seconds
from chaos.checkers.verdict import Verdict
from chaos.checks import RunEvidence, check_run
from chaos.engines import engine_for
from chaos.env.acquire import acquire_environment
from chaos.env.clock_shim import CLOCK_DIR
from chaos.env.environment import Environment
from chaos.env.lazy_mount import LazyMount
from chaos.env.processes import tail
from chaos.env.roles import ClusterRoles, RoleNames
from chaos.errors import EnvironmentFailure, SpecError
from chaos.experiment import Experiment, dump_experiment, load_experiment
from chaos.interrupt import RunInterrupted
from chaos.report.html import write_html
from chaos.report.interrupted import record_interrupted
from chaos.report.junit import write_junit
from chaos.report.live import LiveProgress
from chaos.report.result import Outcome, print_verdicts, table_digest, write_result
from chaos.sides.base import OutputWatch, RunContext, empty_output, sink_side, source_side
from chaos.sides.kafka import output_topic, read_committed_topics
from chaos.sides.kafka_polls import TopicPoller
from chaos.sides.parquet import read_parquet_output
from chaos.sides.stable_offsets import StableOffsetsProbe
from chaos.sides.visibility import VisibilityProbe, units_table
from chaos.supervisor import Supervisor
from chaos.workload.producer import WorkloadOutcome, WorkloadProgress
from drivers.kafka_sink import transactional_id
from drivers.runtime.factory import DISK_CONTROL
from drivers.sdk import records
from drivers.sdk.events import Event
from drivers.sdk.history import History, read_history
from faults.catalog import LoseUnfsyncedFault
from faults.clock import clock_file
from faults.injector import FaultContext
from faults.nemesis import describe
from faults.schedule import FaultSchedule
from faults.targets import PROCESSES, cluster_role

T = TypeVar("T")
"""What one read of the output gives: a table of records, or of commit units."""

READY_WAIT = 120.0
"""Seconds the workload waits for the pipeline to be ready (`Run._await_ready`)."""


@dataclass(frozen=True)
class RunResult:
    run_dir: Path
    status: Outcome
    verdicts: list[Verdict]

    @property
    def exit_code(self) -> int:
        return self.status.exit_code


def run_file(path: Path, runs_dir: Path, env_file: Path | None, private: bool, console: Console,
             keep_env: bool = False) -> RunResult:
    experiment = load_experiment(path)
    run_dir = _new_run_dir(runs_dir, experiment.name)
    shutil.copyfile(path, run_dir / "experiment.yaml")
    return _run(experiment, run_dir, env_file, private, console, keep_env)


def replay_run(recorded: Path, runs_dir: Path, env_file: Path | None, private: bool, console: Console,
               keep_env: bool = False) -> RunResult:
    """Run a recorded run again: the same seed, workload and concrete fault schedule (a nemesis's
    draw included), as resolved.json recorded them."""
    experiment = recorded_experiment(recorded)
    run_dir = _new_run_dir(runs_dir, experiment.name)
    (run_dir / "experiment.yaml").write_text(dump_experiment(experiment))
    (run_dir / "replay-of.txt").write_text(f"{recorded.resolve()}\n")
    return _run(experiment, run_dir, env_file, private, console, keep_env)


def recorded_experiment(recorded: Path) -> Experiment:
    """The experiment a run directory's `resolved.json` recorded, its nemesis drawn into plain faults."""
    resolved = recorded / "resolved.json"
    try:
        return Experiment.model_validate(json.loads(resolved.read_text())["experiment"])
    except (OSError, ValueError, KeyError) as e:
        raise SpecError(str(resolved), [f"not a recorded run: {e}"]) from None


def _run(experiment: Experiment, run_dir: Path, env_file: Path | None, private: bool, console: Console,
         keep_env: bool) -> RunResult:
    try:
        with ExitStack() as stack:
            log = logging.FileHandler(run_dir / "logs" / "harness.log")
            # The thread tells runs apart when `chaos certify --jobs` runs several in one process.
            log.setFormatter(logging.Formatter("%(asctime)s %(threadName)s %(name)s %(levelname)s %(message)s"))
            logging.getLogger("chaos").addHandler(log)
            stack.callback(logging.getLogger("chaos").removeHandler, log)
            env = acquire_environment(None if private else env_file, private,
                                      experiment.pipeline.profile == "distributed-durable", run_dir / "env", stack,
                                      console, keep_env, shape=experiment.environment.shape)
            return Run(experiment, run_dir, env, console).execute()
    except RunInterrupted:
        raise
    except KeyboardInterrupt as e:  # before the run began: still say so
        raise record_interrupted(run_dir, e, experiment, None, console) from e


def _new_run_dir(runs_dir: Path, name: str) -> Path:
    stamp = datetime.now(timezone.utc).strftime("%Y%m%d-%H%M%S")
    run_dir = runs_dir.resolve() / f"{name}-{stamp}-{secrets.token_hex(2)}"
    (run_dir / "logs").mkdir(parents=True)
    return run_dir


class Run:
    def __init__(self, experiment: Experiment, run_dir: Path, env: Environment, console: Console):
        self.experiment = experiment
        self.run_dir = run_dir
        self.env = env
        self.console = console
        self.run_id = run_dir.name
        self.history = History(run_dir / "history.jsonl", source="harness")
        self.progress = WorkloadProgress()
        context = RunContext(experiment, env, run_dir, self.history)
        self.source = source_side(context)
        self.sink = sink_side(context)
        self.engine = engine_for(context, self.source, self.sink)
        self.probe: VisibilityProbe | None = None
        self.poller: TopicPoller | None = None
        self.watch: OutputWatch | None = None
        self.cluster_roles: ClusterRoles | None = None
        self.prefilled: WorkloadOutcome | None = None
        self.stable_offsets = StableOffsetsProbe(env.admin, read_committed_topics(context), self.history.append)

    def execute(self) -> RunResult:
        try:
            return self._execute()
        except KafkaException as e:
            raise EnvironmentFailure(f"Kafka failed during the run: {e}", tail(self.env.state.logs / "server.log")) from e
        except KeyboardInterrupt as e:  # the stack has healed the faults and stopped the processes
            supervisor: Supervisor | None = getattr(self, "supervisor", None)
            restarts = {name: supervisor.restarts(name) for name in self.processes} if supervisor else None
            raise record_interrupted(self.run_dir, e, self.experiment, lambda: self._evidence(None, False, 0.0, []),
                                     self.console, restarts) from e

    def _lazy_output(self, stack: ExitStack) -> LazyMount | None:
        """The sink's output served through lazyfs for the whole run, when a fault loses unfsynced writes."""
        if not any(isinstance(fault, LoseUnfsyncedFault) for fault in self.experiment.faults):
            return None
        output = getattr(self.sink, "output")  # a sink with `local_output` (the experiment was checked)
        return stack.enter_context(LazyMount(output, self.run_dir / "logs", self.history.append))

    def _clock_file(self, target: str) -> Path | None:
        """A clock fault's offset file: a pipeline process's is the run's, a service's (a broker's) the environment's."""
        return clock_file(self.run_dir / CLOCK_DIR, target) if target in PROCESSES else self.env.clock_file(target)

    def _execute(self) -> RunResult:
        experiment = self.experiment
        pipeline = experiment.pipeline
        self._prepare()
        with ExitStack() as stack:
            stack.callback(self.history.close)
            storage = self._lazy_output(stack)
            supervisor = self.supervisor = Supervisor(
                self.history, restart_delay=pipeline.restart_delay, ready_events=self.engine.ready_events,
                on_ready=self.engine.on_ready)
            stack.callback(supervisor.stop_all)
            for name in self.processes:
                supervisor.start(name, self.engine.factory(name))
            self.engine.start(supervisor.pid, stack)
            self.cluster_roles = self._cluster_roles()
            context = FaultContext(toxiproxy=self.env.toxiproxy, processes=supervisor, services=self.env,
                                   disk_control=self.run_dir / DISK_CONTROL, resolve_role=self._resolve_role,
                                   proxies=self.env.link_proxies, cluster=self.cluster_roles,
                                   output_dirs=(self.run_dir / "output", self.run_dir / "lake"),
                                   clock_file=self._clock_file, pipeline=tuple(self.processes), storage=storage)
            schedule = FaultSchedule(experiment.faults, context, self.history, self.progress)
            supervisor.excused = schedule.disturbed
            stack.callback(schedule.close)
            self.watch = self.sink.watch()
            if self.watch is not None:
                stack.callback(self.watch.close)
                self.probe = VisibilityProbe(self.watch.visible)
                self.probe.start()
                stack.callback(self.probe.stop)
            if self.sink.polled:
                self.poller = TopicPoller(self.env.bootstrap_direct, output_topic(self.run_id))
                self.poller.start()
                stack.callback(self.poller.stop)
            self.stable_offsets.start()
            stack.callback(self.stable_offsets.stop)
            with LiveProgress(self.console, experiment.workload.records, self.source.live_feed) as live:
                outcome = self._drive(schedule, live)
                if not self.source.live_feed:  # the input was all there: the workload ends as it starts
                    self.history.append(Event.WORKLOAD_END, produced=experiment.workload.records, seconds=0.0)
                if outcome is not None:
                    pq.write_table(outcome.outcomes, self.run_dir / "workload.parquet")
                self._follow(live, schedule, schedule.finished, schedule.last_heal() + 30)
                schedule.close()
                drained, drain_seconds = self._drain(live, schedule)
                self.stable_offsets.stop()
            self._require_environment()
            codes = supervisor.stop_all()
            if self.probe is not None:
                self.probe.stop()
            if self.poller is not None:
                self.poller.stop()
            self.history.append(Event.RUN_CHECKING, drained=drained, exit_codes=codes)
            evidence = self._evidence(outcome, drained, drain_seconds, schedule.errors)
            verdicts = check_run(experiment, self.run_dir, evidence)
            result = write_result(
                self.run_dir, verdicts, experiment=experiment.name, run_id=self.run_id, seed=experiment.seed,
                pipeline=f"{pipeline.source} -> {pipeline.sink} ({pipeline.profile})",
                guarantee=pipeline.guarantee.label,
                workload_digest=records.digest(experiment.workload, experiment.seed),
                source_digest=table_digest(evidence.truth.select(["id", "key", "checksum"])),
                restarts={name: supervisor.restarts(name) for name in self.processes},
                crash_points=experiment.crash_points(),
                workload_seconds=round(outcome.seconds, 3) if outcome else 0.0,
                drain_seconds=round(drain_seconds, 3),
            )
        write_junit(self.run_dir, result)
        write_html(self.run_dir, result, read_history(self.run_dir / "history.jsonl"))
        print_verdicts(self.console, experiment.name, verdicts, self.run_dir)
        return RunResult(self.run_dir, Outcome(result["status"]), verdicts)

    def _cluster_roles(self) -> ClusterRoles | None:
        """The cluster's roles as this run names them, when the environment is a cluster whose input is Kafka."""
        pipeline = self.experiment.pipeline
        if self.experiment.environment.kafka.brokers == 1 or pipeline.source not in ("kafka", "kafka-transactional"):
            return None
        settings = self.source.settings()
        native_kafka_sink = pipeline.sink == "kafka-transactional" and pipeline.engine == "native"
        sink_id = transactional_id(self.run_id, 0) if native_kafka_sink else None
        return self.env.roles(RoleNames(str(settings["topic"]), str(settings["group_id"]), sink_id))

    def _resolve_role(self, role: str) -> str:
        """Who plays a fault's role now: a cluster's node (the environment knows), or one of the
        engine's processes; written to the history, so the timeline names it."""
        if cluster_role(role):
            if self.cluster_roles is None:
                raise ValueError(f"{role} is a role of a cluster whose input is Kafka")
            name = self.cluster_roles.node_playing(role)
        else:
            name = self.engine.resolve_role(role)
        self.history.append(Event.FAULT_ROLE_RESOLVED, role=role, process=name)
        return name

    @property
    def processes(self) -> list[str]:
        return self.engine.processes

    def _require_environment(self) -> None:
        """The pipeline could not run, or a service died with no fault to explain it: whatever the
        verdicts would say, they would be about the testbed, not the connector (exit 3)."""
        failure = self.supervisor.failure
        if failure is not None:
            raise EnvironmentFailure(failure.describe(), failure.log_tail)
        problem = self.env.health_problem()
        if problem is not None:
            raise EnvironmentFailure(f"a service failed during the run, and no fault explains it: {problem}",
                                     tail(self.env.state.logs / "server.log"))

    def _prepare(self) -> None:
        experiment = self.experiment
        self.env.reset()
        self.source.prepare()
        job = self.engine.prepare()
        (self.run_dir / "schedule.txt").write_text(describe(experiment.faults))
        for name, log in self.env.log_files().items():
            target = self.run_dir / "logs" / name
            if not target.exists() and log.parent != self.run_dir / "logs":
                target.symlink_to(log.resolve())
        (self.run_dir / "resolved.json").write_text(json.dumps({
            "experiment": experiment.model_dump(mode="json"), "run_id": self.run_id,
            "job": job,
            "links": {name: proxy.listen for name, proxy in self.env.toxiproxy.proxies().items()},
            "schedule": [f.model_dump(mode="json") for f in experiment.faults],
        }, indent=2))
        self.history.append(Event.RUN_START, experiment=experiment.name, seed=experiment.seed, run_id=self.run_id)
        if experiment.workload.prefill:  # before any pipeline process starts
            self._prefill()

    def _follow(self, live: LiveProgress, schedule: FaultSchedule, done: Callable[[], bool], timeout: float) -> bool:
        """Keep the display true until `done()` or `timeout`; end the run early if the pipeline cannot run."""
        deadline = time.monotonic() + timeout
        while True:
            if self.supervisor.failed.is_set():
                self._require_environment()
            finished = done()  # before the display reads the status, so that its last render is the final count
            live.update(self.progress, self.source.committed(self.engine.status()), schedule.active())
            if finished:
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.25)

    def _prefill(self) -> None:
        """`workload.prefill`: the whole workload goes into the topic before the job starts, so that the
        job, not the producer, sets the pace (the runtime's own ceiling)."""
        self.console.print(f"prefilling the source with {self.experiment.workload.records:,} records ...")
        self.prefilled = self.source.drive(self.progress, threading.Event())

    def _await_ready(self, live: LiveProgress, schedule: FaultSchedule) -> None:
        """The workload and the schedule's clock start once every pipeline process is ready, as a
        Jepsen client starts once the system is set up. Otherwise a worker that is slow to start (one
        importing a table format's library on a busy machine) finds the whole input waiting, reads it
        in one burst, and a fault timed from readiness meets no traffic. A pipeline that is not ready
        within READY_WAIT gets its workload anyway: the liveness checks then say what they see."""
        if not self._follow(live, schedule, lambda: self.supervisor.ready_at is not None, READY_WAIT):
            logging.getLogger("chaos.runner").warning("the pipeline was not ready within %ss; the workload starts "
                                                      "anyway", READY_WAIT)

    def _drive(self, schedule: FaultSchedule, live: LiveProgress) -> WorkloadOutcome | None:
        """Feed the source (in a thread) while the schedule fires faults and the display updates."""
        if self.experiment.workload.prefill:  # fed already, before the pipeline started (`_prefill`)
            schedule.start()
            return self.prefilled
        stop = threading.Event()
        box: dict[str, object] = {}

        def produce() -> None:
            try:
                box["outcome"] = self.source.drive(self.progress, stop)
            except BaseException as e:  # noqa: BLE001 - re-raised in the main thread
                box["error"] = e
            finally:
                self.progress.done.set()

        producer = threading.Thread(target=produce, name="workload", daemon=True)
        self._await_ready(live, schedule)
        schedule.start()
        producer.start()
        try:
            self._follow(live, schedule, self.progress.done.is_set, float("inf"))
        finally:
            stop.set()
            producer.join(120)
        if "error" in box:
            raise box["error"]  # type: ignore[misc]
        return box.get("outcome")  # type: ignore[return-value]

    def _drain(self, live: LiveProgress, schedule: FaultSchedule) -> tuple[bool, float]:
        """Wait, within the bound, until a committed checkpoint covers the whole input. The drain time
        runs from the workload's end to that checkpoint's commit (0 if it was committed before)."""
        started = time.monotonic()

        def caught_up() -> bool:
            status = self.engine.status()
            return bool(status) and status.get("settled", True) and self.source.caught_up(status)

        def halted() -> str | None:
            """Why the pipeline will never catch up (a black box whose tasks all failed), if it won't."""
            return (self.engine.status() or {}).get("halted")

        timeout = self.experiment.expect.drain_timeout
        if self._follow(live, schedule, lambda: caught_up() or bool(halted()), timeout) and caught_up():
            covering = (self.engine.status() or {}).get("checkpoint_id")
            seconds = drain_seconds(read_history(self.history.path), covering)
            seconds = time.monotonic() - started if seconds is None else seconds
            self.history.append(Event.RUN_DRAINED, seconds=round(seconds, 3), checkpoint_id=covering)
            return True, seconds
        why = halted()
        self.history.append(Event.RUN_DRAIN_TIMEOUT, seconds=round(time.monotonic() - started, 3),
                            **({"halted": why} if why else {}))
        return False, time.monotonic() - started

    @staticmethod
    def _read_back(read: Callable[[], T], empty: Callable[[], T]) -> tuple[T, str | None]:
        """What `read` reads back from the output, or, when the format's own reader cannot read it (a
        damaged data file), `empty()` and why: that is a verdict on the output (readable-output), not a
        harness failure."""
        try:
            return read(), None
        except EnvironmentFailure:
            raise
        except Exception as e:  # noqa: BLE001 - whatever the format's reader raises on bad data
            logging.getLogger("chaos.runner").warning("the output could not be read: %s", e)
            return empty(), f"{type(e).__name__}: {e}"

    def _evidence(self, outcome: WorkloadOutcome | None, drained: bool, drain_seconds: float,
                  fault_errors: list[str]) -> RunEvidence:
        """Everything the checkers need, read back after the run: independently of the pipeline."""
        watched = self.probe is not None and self.watch is not None
        output, unreadable = self._read_back(self.sink.read, empty_output)
        units, units_unreadable = (self._read_back(self.watch.units, lambda: units_table([])) if watched
                                   else (None, None))
        return RunEvidence(
            truth=self.source.truth(), output=output, unreadable=unreadable or units_unreadable,
            late=(read_parquet_output(self.run_dir / "late")
                  if self.experiment.pipeline.allowed_lateness is not None else None),
            outcomes=outcome.outcomes if outcome is not None else None,
            history=read_history(self.run_dir / "history.jsonl"),
            observations=self.probe.observations if watched else None,
            units=units,
            polls=self.poller.table() if self.poller is not None else None,
            read_errors=self.probe.errors if self.probe is not None else 0,
            drained=drained, drain_seconds=drain_seconds, fault_errors=tuple(fault_errors))
