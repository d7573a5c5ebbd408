"""PostgreSQL in the environment, reached directly and through a Toxiproxy link, and the store on it.

These tests start environments of their own (with PostgreSQL) rather than the session's one.
"""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path
from typing import Iterator

import psycopg
import pytest

from chaos.env import postgres as pg
from chaos.env.environment import Environment
from chaos.env.processes import ProcessRef
from drivers.runtime.stores import PostgresStore, open_store
from faults.toxiproxy import Toxic
from tests.unit.test_stores import JOB, kill_saver_repeatedly, make_checkpoint

pytestmark = pytest.mark.integration

LINK = "coordinator-store"


def _live(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


def _query(dsn: str, sql: str = "SELECT current_database()") -> object:
    with psycopg.connect(dsn, connect_timeout=3) as conn:
        return conn.execute(sql).fetchone()[0]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Environment]:
    environment = Environment.start(tmp_path_factory.mktemp("pg-env"), with_postgres=True)
    try:
        yield environment
    finally:
        environment.stop()


@pytest.fixture
def link(env: Environment) -> Iterator[str]:
    """The store link's DSN, healthy again (enabled, no toxics) after each test."""
    dsn = env.postgres_dsn(via=LINK)
    try:
        yield dsn
    finally:
        env.toxiproxy.set_enabled(LINK, True)
        for toxic in env.toxiproxy.toxics(LINK):
            env.toxiproxy.remove_toxic(LINK, toxic.name)


def test_queries_work_directly_and_through_a_link(env: Environment, link: str):
    assert env.state.postgres is not None
    assert _query(env.postgres_dsn()) == "chaos"
    assert _query(link) == "chaos"
    proxy = env.link(LINK)
    assert proxy.upstream == f"127.0.0.1:{env.state.postgres}"
    assert f"port={proxy.port}" in link and proxy.port != env.state.postgres
    assert env.health_problem() is None


def test_a_disabled_link_refuses_new_connections(env: Environment, link: str):
    env.toxiproxy.set_enabled(LINK, False)
    started = time.monotonic()
    with pytest.raises(psycopg.OperationalError):
        _query(link)
    assert time.monotonic() - started < 5
    assert _query(env.postgres_dsn()) == "chaos", "the direct port is never faulted"
    env.toxiproxy.set_enabled(LINK, True)
    assert _query(link) == "chaos"


def test_postgres_store_round_trip(env: Environment):
    job = f"job-{uuid.uuid4().hex[:8]}"
    store = open_store("distributed-durable", dsn=env.postgres_dsn())
    assert isinstance(store, PostgresStore)
    try:
        assert store.latest(job) is None
        for n in (2, 5, 3):
            store.save(make_checkpoint(job, n))
        store.save(make_checkpoint("other-" + job, 9))
        assert store.latest(job) == make_checkpoint(job, 5)
        store.save(make_checkpoint(job, 5))  # a retried save of the same checkpoint is an upsert
        assert store.latest(job) == make_checkpoint(job, 5)
    finally:
        store.close()


def test_postgres_saves_stay_whole_when_the_saver_is_killed(env: Environment):
    dsn = env.postgres_dsn()
    seen = kill_saver_repeatedly("postgres", dsn, lambda: PostgresStore(dsn), kills=10, seed=7)
    assert len(seen) >= 6 and seen[-1] > seen[0], f"too little progress to mean anything: {seen}"
    assert _query(dsn, f"SELECT count(*) FROM checkpoints WHERE job_id = '{JOB}'") == seen[-1]


def test_a_save_retries_through_a_short_link_outage(env: Environment, link: str):
    job = f"job-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(link, retry_for=30)
    try:
        store.save(make_checkpoint(job, 1))
        env.toxiproxy.set_enabled(LINK, False)
        healer = threading.Timer(2.0, env.toxiproxy.set_enabled, (LINK, True))
        healer.start()
        started = time.monotonic()
        store.save(make_checkpoint(job, 2))
        elapsed = time.monotonic() - started
        healer.join()
        assert 1.5 < elapsed < 20, elapsed
        assert store.latest(job) == make_checkpoint(job, 2)
    finally:
        store.close()


def test_a_partitioned_store_fails_in_bounded_time_then_recovers(env: Environment, link: str):
    """A blackhole keeps connections open and drops bytes: only a client-side deadline ends the wait."""
    job = f"job-{uuid.uuid4().hex[:8]}"
    store = PostgresStore(link, retry_for=3, op_timeout=1, connect_timeout=1)
    try:
        store.save(make_checkpoint(job, 1))
        for stream in ("upstream", "downstream"):
            env.toxiproxy.add_toxic(LINK, Toxic(f"blackhole-{stream}", "timeout", stream, 1.0, {"timeout": 0}))
        started = time.monotonic()
        with pytest.raises(psycopg.OperationalError):
            store.save(make_checkpoint(job, 2))
        assert time.monotonic() - started < 12
        for stream in ("upstream", "downstream"):
            env.toxiproxy.remove_toxic(LINK, f"blackhole-{stream}")
        store.save(make_checkpoint(job, 3))
        assert store.latest(job) == make_checkpoint(job, 3)
    finally:
        store.close()


def test_stop_leaves_no_postgres_process(tmp_path: Path):
    env = Environment.start(tmp_path / "env", with_postgres=True)
    try:
        state = Environment.load(tmp_path / "env" / "state.json").state
        assert state.postgres == env.state.postgres and "postgres" in state.processes
        postmaster = env.state.processes["postgres"].pid
        conn = psycopg.connect(env.postgres_dsn(), connect_timeout=3)  # a session a smart shutdown would wait for
        backends = [r.pid for r in pg.children(postmaster)]
        assert _live(postmaster) and len(backends) >= 3 and all(_live(p) for p in backends)
        started = time.monotonic()
    finally:
        env.stop()
    assert time.monotonic() - started < 8, "a fast shutdown does not wait for clients"
    assert not [p for p in [postmaster, *backends] if _live(p)]
    conn.close()


def test_a_dead_postgres_makes_the_environment_unhealthy(tmp_path: Path):
    env = Environment.start(tmp_path / "env", with_postgres=True)
    try:
        assert env.health_problem() is None
        proc = env.state.processes["postgres"]
        pg.stop_server(ProcessRef(proc.pid, proc.start_time))
        assert "postgres" in (env.health_problem() or "")
    finally:
        env.stop()
