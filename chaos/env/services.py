"""Service faults: kill, terminate or pause one of an environment's services (the broker, a node of
a cluster, PostgreSQL), and start it again on its data.

Why its own module: the environment is what runs; this is what faults do to it. The heal of a
kill or terminate restarts the service from this process, often one that only attached to a
shared environment: so the new pid goes to the state files (`_record_process`), and the restarted
service is spawned detached unless its owner's children die with the owner.
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from pathlib import Path
from typing import Callable

from chaos.env import kafka
from chaos.env import postgres as pg
from chaos.env.cluster import KafkaCluster
from chaos.env.containers import ContainerRef
from chaos.env.install import Tools
from chaos.env.keeper import Keeper
from chaos.env.launch import Service, ServiceRef
from chaos.env.ports import PortLeases
from chaos.env.processes import signal_all
from chaos.env.state import EnvState
from chaos.errors import EnvironmentFailure
from faults.injector import Heal

log = logging.getLogger("chaos.env")


class ServiceFaults:
    """The `faults.injector.ProcessControl` of an environment's services, mixed into `Environment`."""

    state: EnvState
    leases: PortLeases
    _owned: list[Service]
    _keeper: Keeper | None
    _keeper_lock: threading.Lock

    @property
    def owner(self) -> str:
        raise NotImplementedError

    def reload_processes(self) -> None:
        raise NotImplementedError

    def cluster(self) -> KafkaCluster:
        raise NotImplementedError

    def tools(self) -> Tools:
        raise NotImplementedError

    def _record_process(self, name: str, ref: ServiceRef) -> None:
        raise NotImplementedError

    def _dies_with_owner(self) -> bool:
        """Restarts die with this process when it owns a non-detached environment (as the originals do)."""
        return bool(self._owned) and not self.state.detached

    def _keeper_for_spawning(self) -> Keeper:
        with self._keeper_lock:
            if self._keeper is None:
                self._keeper = Keeper([])
            return self._keeper

    def _restartable(self, name: str) -> None:
        nodes = self.cluster().names if self.state.nodes else ["kafka"]
        services = [*nodes, *([] if self.state.postgres is None else ["postgres"])]
        if name not in services:
            raise ValueError(f"{name} is not a service of this environment that can be stopped and restarted "
                             f"({', '.join(services)})")

    def stop_service(self, name: str, graceful: bool) -> None:
        """SIGKILL a service's whole process tree, or shut it down cleanly (bounded); returns once it is down."""
        self._restartable(name)
        self.reload_processes()
        if name not in self.state.processes:
            raise EnvironmentFailure(f"this environment has no {name}")
        self.leases.renew(self.owner, self.state.ports)  # no one takes its port while it is down
        ref = self.state.processes[name].ref()
        started = time.monotonic()
        if isinstance(ref, ContainerRef):
            clean = ref.shut_down(graceful, pg.TERMINATE_TIMEOUT if name == "postgres" else kafka.TERMINATE_TIMEOUT)
        elif name != "postgres":  # the broker, or a node or controller of the cluster
            clean = kafka.stop_broker(ref, graceful)
        elif graceful:
            clean = pg.terminate_server(ref)
        else:
            pg.kill_server(ref)
            clean = False
        log.info("%s (pid %d) %s in %.1fs%s", name, ref.pid, "terminated" if graceful else "killed",
                 time.monotonic() - started, "" if clean or not graceful else " (SIGKILLed after the grace period)")

    def stop_process(self, name: str, graceful: bool) -> Heal:
        """A kill or terminate fault on a service: down now, started again on its data by the heal."""
        self.stop_service(name, graceful)
        return lambda: self.restart_service(name)

    def pause_process(self, name: str) -> Heal:
        """A pause fault on a service: SIGSTOP its whole process tree (PostgreSQL's backends lead
        sessions of their own, so its group alone would leave them serving), or `docker pause` its
        container; the heal resumes it."""
        self.reload_processes()  # a restart by an earlier fault or run changed the pid
        if name not in self.state.processes:
            raise EnvironmentFailure(f"this environment has no {name}")
        ref = self.state.processes[name].ref()
        if isinstance(ref, ContainerRef):
            ref.pause()
            return ref.unpause
        pid = ref.pid
        tree = [pid, *(child.pid for child in pg.children(pid))]
        signal_all(tree, signal.SIGSTOP)
        return lambda: signal_all(tree, signal.SIGCONT)

    def restart_service(self, name: str) -> None:
        """Start a stopped service again on the same data, ports and configuration; returns once it is
        healthy (Kafka answers metadata on its direct listener, PostgreSQL answers a query)."""
        self._restartable(name)
        self.reload_processes()
        current = self.state.processes.get(name)
        ref = current.ref() if current is not None else None
        if ref is not None and ref.running():
            raise EnvironmentFailure(f"{name} (pid {ref.pid}) is still running: it cannot be started twice")
        if isinstance(ref, ContainerRef):
            self._start_container_again(name, ref)
            return
        workdir = Path(self.state.workdir)
        detached = not self._dies_with_owner()
        keeper = self._keeper_for_spawning()

        def spawn(factory: Callable[[], Service]) -> Service:
            if detached:  # no PR_SET_PDEATHSIG: any thread may spawn it; the keeper reaps it
                proc = factory()
                keeper.adopt(proc)
                return proc
            return keeper.spawn(factory)

        def record(proc: Service) -> None:
            self._record_process(name, proc.ref)

        started = time.monotonic()
        if self.state.nodes and name != "postgres":  # a node or a controller of the cluster
            self.cluster().restart(name, spawn, detached, record)
        elif name == "kafka":
            kafka.restart_broker(self.tools(), workdir, self.state.logs, self.state.kafka_direct,
                                 detached, spawn=spawn, on_spawn=record)
        else:
            if self.state.postgres is None:
                raise EnvironmentFailure("this environment has no PostgreSQL")
            pg.start_postgres(workdir, self.state.logs, self.state.postgres, detached, spawn=spawn, on_spawn=record,
                              launcher=self.tools().launcher)
            problem = pg.health_problem(self.state.postgres)
            if problem:
                raise EnvironmentFailure(f"PostgreSQL restarted but is not healthy: {problem}")
        log.info("%s restarted (pid %d, %s) and healthy in %.1fs", name, self.state.processes[name].pid,
                 "detached" if detached else "dies with its owner", time.monotonic() - started)

    def _start_container_again(self, name: str, ref: ContainerRef) -> None:
        """On Docker, the service's stopped container starts again (`docker start`): the same command
        on the same data. A broker that exits during start-up (its registration refused while the old
        session lasts) is started again, as natively, until it answers or the restart bound ends."""
        started = time.monotonic()
        deadline = started + kafka.RESTART_TIMEOUT
        while True:
            new = ref.start()
            self._record_process(name, new)
            problem = self._answers_when_up(name, new, deadline)
            if problem is None:
                break
            if new.running() or time.monotonic() + 2 > deadline:
                raise EnvironmentFailure(f"{name} was started again but does not answer: {problem}")
            log.warning("%s exited during start-up (%s); starting it again", name, problem)
            time.sleep(1)
        log.info("%s restarted (its container %s again) and healthy in %.1fs", name, ref.container[:12],
                 time.monotonic() - started)

    def _answers_when_up(self, name: str, ref: ContainerRef, deadline: float) -> str | None:
        """None once the service answers (Kafka metadata, a PostgreSQL query); why not once its
        container has exited or `deadline` has passed."""
        while True:
            problem = self._service_problem(name)
            if problem is None or not ref.running() or time.monotonic() > deadline:
                return problem
            time.sleep(0.5)

    def _service_problem(self, name: str) -> str | None:
        """None when the service answers now; otherwise why not."""
        if name == "postgres":
            return "this environment has no PostgreSQL" if self.state.postgres is None else \
                pg.health_problem(self.state.postgres)
        try:
            kafka.wait_for_metadata(f"127.0.0.1:{self.state.kafka_direct}", timeout=2)
        except EnvironmentFailure as e:
            return str(e)
        return None
