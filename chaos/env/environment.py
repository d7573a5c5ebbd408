"""One running environment: a Kafka broker and a Toxiproxy server, with a proxy per Kafka link,
and optionally a PostgreSQL server (the `distributed-durable` checkpoint store).

An environment is either *owned* (started for one run or one test session, and stopped with it;
its children die with the harness even on SIGKILL) or *shared* (`chaos env up`, detached, found
through a state file by later runs, stopped by `chaos env down`). Experiments sharing one reset it
between them instead of paying the start-up cost again.
"""

from __future__ import annotations

import time
from pathlib import Path

from confluent_kafka.admin import AdminClient
from pydantic import BaseModel

from chaos.env import install as installer
from chaos.env import postgres as pg
from chaos.env.kafka import KafkaPorts, start_broker, wait_for_metadata
from chaos.env.processes import ManagedProcess, ProcessRef, free_port, tail
from chaos.env.toxiproxy_server import start_toxiproxy
from chaos.errors import EnvironmentFailure
from chaos.kafka_clients import client_config
from chaos.spec.targets import KAFKA_LINKS
from faults.toxiproxy import Proxy, Toxiproxy, ToxiproxyError



class LinkPorts(BaseModel):
    broker: int
    proxy: int


class ProcessState(BaseModel):
    pid: int
    start_time: int

    def ref(self) -> ProcessRef:
        return ProcessRef(self.pid, self.start_time)


class EnvState(BaseModel):
    """What a later harness process needs to attach: ports, processes and log locations."""

    workdir: str
    kafka_direct: int
    kafka_controller: int
    kafka_links: dict[str, LinkPorts]
    toxiproxy_api: int
    processes: dict[str, ProcessState]
    detached: bool
    postgres: int | None = None
    """PostgreSQL's direct port on 127.0.0.1, when the environment has one."""

    @property
    def logs(self) -> Path:
        return Path(self.workdir) / "logs"


class Environment:
    def __init__(self, state: EnvState, owned: list[ManagedProcess] | None = None):
        self.state = state
        self.toxiproxy = Toxiproxy(state.toxiproxy_api)
        self._owned = owned or []

    @property
    def bootstrap_direct(self) -> str:
        """The harness's own Kafka address: not proxied, so checks are never faulted."""
        return f"127.0.0.1:{self.state.kafka_direct}"

    def bootstrap(self, link: str) -> str:
        """The address clients on `link` use: the link's proxy."""
        return f"127.0.0.1:{self.state.kafka_links[link].proxy}"

    def log_files(self) -> list[Path]:
        return sorted(p for p in self.state.logs.glob("*.log") if p.is_file())

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
    def start(cls, workdir: Path, detached: bool = False, with_postgres: bool = False) -> "Environment":
        """Provision if needed, then start Kafka and Toxiproxy (and PostgreSQL) and wire the Kafka links."""
        tools = installer.install()
        if with_postgres:
            pg.ensure_postgres_installed()
        workdir.mkdir(parents=True, exist_ok=True)
        logs = workdir / "logs"
        logs.mkdir(exist_ok=True)
        links = {name: LinkPorts(broker=free_port(), proxy=free_port()) for name in KAFKA_LINKS}
        ports = KafkaPorts(free_port(), free_port(), {n: (p.broker, p.proxy) for n, p in links.items()})
        owned: list[ManagedProcess] = []
        try:
            api_port = free_port()
            owned.append(start_toxiproxy(tools, api_port, logs, detached))
            owned.append(start_broker(tools, ports, workdir, logs, detached))
            postgres_port = None
            if with_postgres:
                postgres_port = free_port()
                owned.append(pg.start_postgres(workdir, logs, postgres_port, detached))
            state = EnvState(
                workdir=str(workdir), kafka_direct=ports.direct, kafka_controller=ports.controller,
                kafka_links=links, toxiproxy_api=api_port,
                processes={p.name: ProcessState(pid=p.ref.pid, start_time=p.ref.start_time) for p in owned},
                detached=detached, postgres=postgres_port,
            )
            env = cls(state, owned)
            env._wire_links()
            env.save(workdir / "state.json")
            return env
        except BaseException:
            for proc in reversed(owned):
                proc.stop()
            raise

    @classmethod
    def load(cls, state_file: Path) -> "Environment":
        """The environment a state file describes, healthy or not (`env down` stops either)."""
        try:
            return cls(EnvState.model_validate_json(state_file.read_text()))
        except (OSError, ValueError) as e:
            raise EnvironmentFailure(f"cannot read environment state {state_file}: {e}") from e

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
        state_file.parent.mkdir(parents=True, exist_ok=True)
        tmp = state_file.with_suffix(".tmp")
        tmp.write_text(self.state.model_dump_json(indent=2))
        tmp.replace(state_file)

    def _wire_links(self) -> None:
        for link, ports in self.state.kafka_links.items():
            self.toxiproxy.ensure(link, f"127.0.0.1:{ports.proxy}", f"127.0.0.1:{ports.broker}")

    def health_problem(self) -> str | None:
        """None when every process is alive and both services answer; otherwise why not."""
        for name, proc in self.state.processes.items():
            if not proc.ref().alive():
                return f"{name} (pid {proc.pid}) is not running"
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

    def create_link(self, name: str, upstream_port: int) -> Proxy:
        """A proxy for a non-Kafka link (e.g. worker to coordinator), on a port Toxiproxy picks."""
        return self.toxiproxy.ensure(name, "127.0.0.1:0", f"127.0.0.1:{upstream_port}")

    def reset(self) -> None:
        """Return to a clean slate between experiments: no toxics, no extra proxies, no topics."""
        self.toxiproxy.reset()
        for name in self.toxiproxy.proxies():
            if name not in self.state.kafka_links:
                self.toxiproxy.delete(name)
        self._wire_links()
        admin = self.admin()
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

    def stop(self) -> None:
        """Stop every process of this environment, owned or found through the state file."""
        for proc in reversed(self._owned):
            proc.stop()
        for name, proc in self.state.processes.items():
            if name == "postgres":
                pg.stop_server(proc.ref())  # its children are not in its process group
            else:
                proc.ref().stop()
        self._owned = []

    def wait_stopped(self, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not any(p.ref().alive() for p in self.state.processes.values()):
                return True
            time.sleep(0.1)
        return False
