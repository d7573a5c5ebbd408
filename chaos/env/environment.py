"""One running environment: a Kafka broker and a Toxiproxy server, with a proxy per Kafka link,
and optionally a PostgreSQL server (the `distributed-durable` checkpoint store).

An environment is either *owned* (started for one run or one test session, and stopped with it;
its children die with the harness even on SIGKILL) or *shared* (`chaos env up`, detached, found
through a state file by later runs, stopped by `chaos env down`). Experiments sharing one reset it
between them instead of paying the start-up cost again.

A service fault (`chaos/env/services.py`) may kill the broker or PostgreSQL and start it again,
often from a harness that only attached. So the state file, not this process's memory, says which
processes are the environment's: a restart records the new pid in every state file of the
environment at once (atomically), and `stop` and `health_problem` re-read it. A service restarted
by a harness that merely attached is spawned detached, since it must outlive that harness as the
original did; in an owned, non-detached environment it dies with the owner like the rest. Every
child this process spawned is reaped by a keeper thread, so that a killed one does not stay a
zombie (which would look alive to PostgreSQL's lock file check, and to kill(pid, 0)).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import replace
from pathlib import Path

from confluent_kafka.admin import AdminClient

from chaos.env import install as installer
from chaos.env import postgres as pg
from chaos.env.clock_shim import CLOCK_DIR
from chaos.env.cluster import KafkaCluster, create_internal_topics
from chaos.env.cluster_config import client_proxy, node_ports
from chaos.env.containers import ContainerLauncher, remove_containers
from chaos.env.docker_images import container_tools, images
from chaos.env.kafka import KafkaPorts, start_broker, wait_for_metadata
from chaos.env.kafka_clients import client_config
from chaos.env.keeper import Keeper
from chaos.env.launch import Service, ServiceRef
from chaos.env.paths import default_env_file
from chaos.env.ports import PortLeases, bind_failure
from chaos.env.processes import tail
from chaos.env.reaper import Reaper
from chaos.env.roles import ClusterRoles, RoleNames, wait_in_sync
from chaos.env.services import ServiceFaults
from chaos.env.state import (
    EnvState,
    LinkPorts,
    NodeState,
    ProcessState,
    read_state,
    state_files,
    state_lock,
    write_atomically,
)
from chaos.env.toxiproxy_server import start_toxiproxy
from chaos.errors import EnvironmentFailure
from chaos.experiment.shape import KafkaShape
from drivers.sdk.links import KAFKA_LINKS
from faults.clock import clock_file
from faults.toxiproxy import Proxy, Toxiproxy, ToxiproxyError

log = logging.getLogger("chaos.env")
START_ATTEMPTS = 3
"""A start whose port was taken after all (by a program that ignores the leases) is tried again on
fresh ports, this many times in all."""


class Environment(ServiceFaults):
    def __init__(self, state: EnvState, owned: list[Service] | None = None, state_file: Path | None = None):
        self.state = state
        self.state_file = state_file
        """The state file this environment was loaded from (or, when started here, `workdir/state.json`)."""
        self.toxiproxy = Toxiproxy(state.toxiproxy_api)
        self.leases = PortLeases()
        self._owned = owned or []
        self._keeper: Keeper | None = Keeper(self._owned) if self._owned else None
        self._keeper_lock = threading.Lock()
        self._reaper: Reaper | None = None
        """A private Docker environment's watchman (`chaos/env/reaper.py`), closed once it is stopped."""

    @property
    def bootstrap_direct(self) -> str:
        """The harness's own Kafka address: not proxied, so checks are never faulted (every node's,
        in a cluster, so that the harness reads on while one is down)."""
        if self.state.nodes:
            return ",".join(f"127.0.0.1:{node.direct}" for node in self.state.nodes)
        return f"127.0.0.1:{self.state.kafka_direct}"

    @property
    def brokers(self) -> int:
        return len(self.state.nodes) or 1

    @property
    def shape(self) -> KafkaShape:
        return KafkaShape(self.brokers, self.state.separate_controllers, self.state.backend)

    def tools(self) -> installer.Tools:
        """What starts (and restarts) this environment's services, on its backend."""
        return _tools(self.state.backend, self.state.images, Path(self.state.workdir))

    @property
    def replication_factor(self) -> int:
        """Of the topics an experiment creates: every broker holds a replica."""
        return self.brokers

    def link_proxies(self, link: str) -> list[str]:
        """The proxies that make up a link: one per broker for a Kafka link in a cluster."""
        if self.state.nodes and link in self.state.kafka_links:
            return [client_proxy(link, index) for index in range(len(self.state.nodes))]
        return [link]

    def clock_file(self, service: str) -> Path | None:
        """The offset file through which a clock fault moves a service's clock (the single broker's, a
        cluster node's or controller's), when it was started with the clock shim."""
        offsets = clock_file(Path(self.state.workdir) / CLOCK_DIR, service)
        return offsets if offsets.exists() else None

    def roles(self, names: RoleNames) -> ClusterRoles:
        """The cluster's roles, elections and replica state, for a run whose roles are named by `names`."""
        return ClusterRoles(self.admin, self.cluster(), names)

    def cluster(self) -> KafkaCluster:
        """The cluster this environment's state describes (for its wiring and its nodes' restarts)."""
        if not self.state.nodes:
            raise EnvironmentFailure("this environment has one broker, not a cluster")
        return KafkaCluster(self.tools(), self.toxiproxy, [node_ports(n) for n in self.state.nodes],
                            Path(self.state.workdir), self.state.logs, self.state.separate_controllers)

    def bootstrap(self, link: str) -> str:
        """The address clients on `link` use: the link's proxy."""
        if link not in self.state.kafka_links:
            raise EnvironmentFailure(f"this environment has no Kafka link {link!r}: it was started by an older "
                                     "version; restart it (`chaos env down`, then `chaos env up`)")
        return f"127.0.0.1:{self.state.kafka_links[link].proxy}"

    def log_files(self) -> dict[str, Path]:
        """The services' logs by a name unique in the environment (a cluster node's: `kafka-1-server.log`)."""
        logs = self.state.logs
        return {("-".join(p.relative_to(logs).parts)): p for p in sorted(logs.rglob("*.log")) if p.is_file()}

    def postgres_dsn(self, via: str | None = None) -> str:
        """A libpq conninfo for database `chaos`: direct, or through link `via` (its proxy is created here).

        The direct port is for the harness's own checks, like Kafka's direct listener; a store that
        faults may reach is given a link. `reset()` deletes such proxies, so ask again per experiment.
        """
        port = self.state.postgres
        if port is None:
            raise EnvironmentFailure("this environment has no PostgreSQL (start it with with_postgres=True)")
        if via is not None:
            port = self.create_link(via, port).port
        return f"host=127.0.0.1 port={port} user={pg.USER} dbname={pg.DATABASE}"

    @classmethod
    def start(cls, workdir: Path, detached: bool = False, with_postgres: bool = False,
              shape: KafkaShape = KafkaShape(), image_overrides: dict[str, str | None] | None = None) -> "Environment":
        """Provision if needed, then start Kafka and Toxiproxy (and PostgreSQL) and wire the Kafka links.

        Every port is leased outside the kernel's ephemeral range (`chaos/env/ports.py`); a start
        that still finds one taken is retried on fresh ports. On the Docker backend the services are
        containers of `images` (official by default; `image_overrides` and CHAOS_*_IMAGE choose others)."""
        shape = replace(shape, backend=shape.backend or "native")
        chosen = images(image_overrides) if shape.backend == "docker" else {}
        if shape.backend == "docker" and shape.brokers > 1:
            raise EnvironmentFailure("the Docker backend runs one broker for now: a cluster needs the native backend")
        tools = _tools(shape.backend, chosen, workdir)
        if with_postgres and shape.backend == "native":
            pg.ensure_postgres_installed()
        leases = PortLeases()
        for attempt in range(1, START_ATTEMPTS + 1):
            try:
                return cls._start_once(tools, workdir, detached, with_postgres, leases, shape, chosen)
            except EnvironmentFailure as e:
                leases.release(str(workdir))
                if attempt == START_ATTEMPTS or not bind_failure(f"{e}\n{e.log_tail}"):
                    raise
                log.warning("a port was taken while the environment started (%s); trying fresh ports", e)
        raise AssertionError("unreachable")

    @classmethod
    def _start_once(cls, tools: installer.Tools, workdir: Path, detached: bool, with_postgres: bool,
                    leases: PortLeases, shape: KafkaShape, chosen: dict[str, str]) -> "Environment":
        brokers = shape.brokers
        workdir.mkdir(parents=True, exist_ok=True)
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        ports = iter(leases.reserve(str(workdir), brokers * (2 * len(KAFKA_LINKS) + 3) + 2))
        nodes = [NodeState(direct=next(ports), replication=next(ports), controller=next(ports),
                           links={name: LinkPorts(broker=next(ports), proxy=next(ports)) for name in KAFKA_LINKS})
                 for _ in range(brokers)]
        links = nodes[0].links
        kafka_ports = KafkaPorts(nodes[0].direct, nodes[0].controller,
                                 {n: (p.broker, p.proxy) for n, p in links.items()})
        api_port, postgres_port = next(ports), next(ports)
        owned: list[Service] = []
        # A private environment's containers are removed even if this harness is SIGKILLed.
        reaper = Reaper(str(workdir), logs / "reaper.log") if shape.backend == "docker" and not detached else None
        try:
            owned.append(start_toxiproxy(tools, api_port, logs, detached))
            if brokers == 1:
                owned.append(start_broker(tools, kafka_ports, workdir, logs, detached))
            else:
                cluster = KafkaCluster(tools, Toxiproxy(api_port), [node_ports(n) for n in nodes], workdir, logs,
                                       shape.separate_controllers)
                owned += cluster.start(detached)
            if with_postgres:
                owned.append(pg.start_postgres(workdir, logs, postgres_port, detached, launcher=tools.launcher))
            state = EnvState(
                workdir=str(workdir), kafka_direct=kafka_ports.direct, kafka_controller=kafka_ports.controller,
                kafka_links=links, toxiproxy_api=api_port,
                processes={p.name: ProcessState.of(p.ref) for p in owned},
                detached=detached, postgres=postgres_port if with_postgres else None,
                nodes=nodes if brokers > 1 else [], separate_controllers=brokers > 1 and shape.separate_controllers,
                backend=shape.backend, images=chosen,
            )
            env = cls(state, owned, state_file=workdir / "state.json")
            env._reaper = reaper
            try:
                env._wire_links()
                if brokers > 1:
                    create_internal_topics(env.bootstrap_direct)
                env.save(workdir / "state.json")
            except ToxiproxyError as e:
                env._close_keeper()
                raise EnvironmentFailure(f"the Kafka links could not be wired: {e}") from e
            except BaseException:
                env._close_keeper()
                raise
            return env
        except BaseException:
            for proc in reversed(owned):
                proc.stop()
            if shape.backend == "docker":
                remove_containers(str(workdir))  # a container whose start failed half-way
            if reaper is not None:
                reaper.close()
            raise

    @classmethod
    def load(cls, state_file: Path) -> "Environment":
        """The environment a state file describes, healthy or not (`env down` stops either)."""
        try:
            state = EnvState.model_validate_json(state_file.read_text())
        except (OSError, ValueError) as e:
            raise EnvironmentFailure(f"cannot read environment state {state_file}: {e}") from e
        if not Path(state.workdir).is_absolute():  # `compose/state.json`'s "." is its own folder
            state.workdir = str(state_file.parent.resolve() / state.workdir)
        return cls(state, state_file=state_file)

    @classmethod
    def attach(cls, state_file: Path) -> "Environment":
        env = cls.load(state_file)
        state = env.state
        problem = env.health_problem()
        if problem:
            raise EnvironmentFailure(f"the environment in {state_file} is not healthy: {problem}",
                                     tail(state.logs / "server.log"))
        return env

    def save(self, state_file: Path) -> None:
        write_atomically(state_file, self.state.model_dump_json(indent=2))

    def _state_files(self) -> list[tuple[Path, EnvState]]:
        """Every state file that describes this environment, with its content: the one it was loaded
        from, its own `workdir/state.json`, and the shared one (`chaos env up` writes both of those)."""
        return state_files(self.state.workdir, [self.state_file, Path(self.state.workdir) / "state.json",
                                                default_env_file()])

    def reload_processes(self) -> None:
        """Take the process records from the state file: a harness may have restarted a service."""
        for path in (self.state_file, Path(self.state.workdir) / "state.json"):
            if path is not None and (state := read_state(path, self.state.workdir)) is not None:
                self.state.processes.update(state.processes)
                return

    def _record_process(self, name: str, ref: ServiceRef) -> None:
        """Record a service's new process here and, atomically, in every state file of the environment."""
        record = ProcessState.of(ref)
        self.state.processes[name] = record
        with state_lock(Path(self.state.workdir)):
            files = self._state_files()
            for path, state in files:
                state.processes[name] = record
                write_atomically(path, state.model_dump_json(indent=2))
        log.info("%s is now pid %d (recorded in %s)", name, ref.pid,
                 ", ".join(str(p) for p, _ in files) or "no state file: memory only")

    def _wire_links(self) -> None:
        if self.state.nodes:
            self.cluster().wire()
            return
        for link, ports in self.state.kafka_links.items():
            self.toxiproxy.ensure(link, f"127.0.0.1:{ports.proxy}", f"127.0.0.1:{ports.broker}")

    def _kafka_proxies(self) -> set[str]:
        """The proxies the environment itself keeps: the Kafka links' (and a cluster's pair links)."""
        if self.state.nodes:
            cluster = self.cluster()
            return {*cluster.client_proxies(), *cluster.pair_links()}
        return set(self.state.kafka_links)

    def health_problem(self) -> str | None:
        """None when every process is alive and both services answer; otherwise why not."""
        self.reload_processes()
        for name, proc in self.state.processes.items():
            if not proc.ref().running():
                where = f"container {proc.container}" if proc.container else f"pid {proc.pid}"
                return f"{name} ({where}) is not running"
        try:
            self.toxiproxy.version()
        except ToxiproxyError as e:
            return f"toxiproxy does not answer: {e}"
        try:
            wait_for_metadata(self.bootstrap_direct, timeout=10)
        except EnvironmentFailure as e:
            return str(e)
        if self.state.postgres is not None:
            return pg.health_problem(self.state.postgres)
        return None

    def link(self, name: str) -> Proxy:
        return self.toxiproxy.proxies()[name]

    @property
    def owner(self) -> str:
        """Who holds this environment's port leases: its work directory."""
        return self.state.workdir

    def reserve_port(self) -> int:
        """A port leased to this environment, for a listener that must be named before it binds."""
        return self.leases.reserve(self.owner, 1)[0]

    def create_link(self, name: str, upstream_port: int, listen_port: int | None = None) -> Proxy:
        """A proxy for a non-Kafka link (e.g. the coordinator to its store), on a leased port
        (`listen_port`, or a fresh one); the existing proxy of that name if it already goes there."""
        upstream = f"127.0.0.1:{upstream_port}"
        existing = self.toxiproxy.proxies().get(name)
        if existing is not None and existing.upstream == upstream and listen_port in (None, existing.port):
            return existing
        for attempt in range(1, START_ATTEMPTS + 1):
            listen = listen_port or self.reserve_port()
            try:
                return self.toxiproxy.ensure(name, f"127.0.0.1:{listen}", upstream)
            except ToxiproxyError as e:
                if listen_port is not None or attempt == START_ATTEMPTS or not bind_failure(str(e)):
                    raise EnvironmentFailure(f"link {name} could not listen on 127.0.0.1:{listen}: {e}") from e
        raise AssertionError("unreachable")

    def retarget_link(self, name: str, upstream_port: int) -> Proxy:
        """Point a link at a listener that has just bound a port of its own (a restarted coordinator)."""
        return self.toxiproxy.retarget(name, f"127.0.0.1:{upstream_port}")

    def reset(self) -> None:
        """Return to a clean slate between experiments: no toxics, no extra proxies, no topics."""
        self.leases.renew(self.owner, self.state.ports)
        self.toxiproxy.reset()
        kept = self._kafka_proxies()
        for name in self.toxiproxy.proxies():
            if name not in kept:
                self.toxiproxy.delete(name)
        self._wire_links()
        admin = self.admin()
        if self.state.nodes:  # the last run's restarted node has caught up before the next run counts on it
            wait_in_sync(admin)
        topics = [t for t in admin.list_topics(timeout=10).topics if not t.startswith("__")]
        if topics:
            for future in admin.delete_topics(topics, operation_timeout=30).values():
                future.result(timeout=60)
        groups = [g.group_id for g in admin.list_consumer_groups(request_timeout=10).result(timeout=15).valid]
        if groups:
            for future in admin.delete_consumer_groups(groups, request_timeout=10).values():
                try:
                    future.result(timeout=15)
                except Exception:  # noqa: BLE001 - a group with live members stays; its run is over
                    pass

    def admin(self) -> AdminClient:
        return AdminClient(client_config(self.bootstrap_direct, **{"socket.timeout.ms": 10000}))

    def _close_keeper(self) -> None:
        with self._keeper_lock:
            keeper, self._keeper = self._keeper, None
        if keeper is not None:
            keeper.close()

    def stop(self) -> None:
        """Stop every process of this environment: its own children, and whatever the state files
        record (a service restarted by another harness is only known there)."""
        self.reload_processes()
        recorded = list(self.state.processes.items())
        for _, state in self._state_files():
            recorded += state.processes.items()
        with self._keeper_lock:
            keeper = self._keeper
        if keeper is not None:
            keeper.refuse()
        for proc in reversed(keeper.children() if keeper is not None else self._owned):
            if proc.poll() is None:  # running, or a zombie not yet reaped: its pid is still its own
                proc.stop()
            else:
                proc.release()  # exited and reaped (replaced by a restart, or dead): never signal it
        seen: set[tuple[int, int]] = set()
        for name, proc in recorded:
            if (proc.pid, proc.start_time) in seen:
                continue
            seen.add((proc.pid, proc.start_time))
            if name == "postgres" and proc.container is None:
                pg.stop_server(proc.ref())  # its children are not in its process group
            else:
                proc.ref().stop()
        self._close_keeper()
        self._owned = []
        if self.state.backend == "docker":
            remove_containers(self.owner)  # any the records missed
        if self._reaper is not None:
            self._reaper.close()
            self._reaper = None
        self.leases.release(self.owner)

    def wait_stopped(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(p.ref().alive() for p in self.state.processes.values()):  # reaped, not just dead
                return True
            time.sleep(0.1)
        return False


def _tools(backend: str, chosen: dict[str, str], workdir: Path) -> installer.Tools:
    """Native: the provisioned Kafka and Toxiproxy (installed if missing). Docker: the images, with the
    environment's directory mounted at its own path (configuration, data and logs live there)."""
    if backend == "docker":
        return container_tools(ContainerLauncher(chosen, owner=str(workdir), mounts=[str(workdir)]))
    return installer.install()
