"""Checkpoint stores: round trips, latest-per-job, and SQLite saves that stay whole under SIGKILL."""

from __future__ import annotations

import random
import select
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from drivers.sdk.contracts import CommitHandle
from drivers.runtime.stores import Checkpoint, InMemoryStore, SqliteStore, open_store

REPO = Path(__file__).resolve().parents[2]
JOB = "job-a"


def make_checkpoint(job: str, n: int) -> Checkpoint:
    """A checkpoint whose whole content follows from (job, n), so a reader can tell a torn one."""
    return Checkpoint(
        job_id=job,
        checkpoint_id=n,
        positions={str(w): {f"p{p}": n * 10 + p for p in range(3)} for w in range(4)},
        handles=[
            CommitHandle(sink="parquet", job_id=job, checkpoint_id=n, worker=w,
                         payload={"files": [f"part-{n}-{w}-{i}.parquet" for i in range(n % 5 + 1)],
                                  "blob": "x" * ((n * 997 + w) % 6000)})  # spans several pages
            for w in range(4)
        ],
        created_at=1_700_000_000 + n * 1.5,
    )


# Saves checkpoints in a tight loop, resuming after the latest one, until it is killed.
SAVER = """
import sys
from pathlib import Path
from drivers.runtime.stores import PostgresStore, SqliteStore
from tests.unit.test_stores import JOB, make_checkpoint
kind, target = sys.argv[1], sys.argv[2]
store = SqliteStore(Path(target)) if kind == "sqlite" else PostgresStore(target)
last = store.latest(JOB)
n = last.checkpoint_id + 1 if last else 1
print("saving", flush=True)
while True:
    store.save(make_checkpoint(JOB, n))
    n += 1
"""


def start_saver(kind: str, target: str) -> subprocess.Popen[str]:
    """The saver, once it is in its loop (bounded wait)."""
    proc = subprocess.Popen([sys.executable, "-c", SAVER, kind, target], cwd=REPO, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, stdin=subprocess.DEVNULL)
    ready, _, _ = select.select([proc.stdout], [], [], 60)
    if not ready or proc.stdout.readline().strip() != "saving":  # type: ignore[union-attr]
        proc.kill()
        raise AssertionError(f"the saver did not start: {proc.communicate(timeout=10)[1][-2000:]}")
    return proc


def kill_saver_repeatedly(kind: str, target: str, open_fresh, kills: int, seed: int) -> list[int]:
    """SIGKILL the saver at seeded random moments; after each, a fresh store must see a whole checkpoint."""
    rng = random.Random(seed)
    seen: list[int] = []
    for _ in range(kills):
        proc = start_saver(kind, target)
        time.sleep(rng.uniform(0.0, 0.15))
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
        proc.stdout.close()  # type: ignore[union-attr]
        proc.stderr.close()  # type: ignore[union-attr]
        store = open_fresh()
        try:
            latest = store.latest(JOB)
        finally:
            store.close()
        if latest is not None:
            assert latest == make_checkpoint(JOB, latest.checkpoint_id), "a torn or altered checkpoint"
            assert not seen or latest.checkpoint_id >= seen[-1], "a saved checkpoint was lost"
            seen.append(latest.checkpoint_id)
    return seen


@pytest.fixture(params=["memory", "sqlite"])
def store(request, tmp_path):
    s = InMemoryStore() if request.param == "memory" else SqliteStore(tmp_path / "checkpoints.db")
    yield s
    s.close()


def test_round_trip(store):
    checkpoint = make_checkpoint(JOB, 3)
    store.save(checkpoint)
    assert store.latest(JOB) == checkpoint


def test_latest_is_the_highest_checkpoint_id_per_job(store):
    for n in (2, 5, 3):
        store.save(make_checkpoint(JOB, n))
    store.save(make_checkpoint("job-b", 1))
    assert store.latest(JOB) == make_checkpoint(JOB, 5)
    assert store.latest("job-b") == make_checkpoint("job-b", 1)


def test_jobs_are_isolated(store):
    store.save(make_checkpoint("job-b", 7))
    assert store.latest(JOB) is None
    store.save(make_checkpoint(JOB, 1))
    assert store.latest(JOB).checkpoint_id == 1
    assert store.latest("job-b").checkpoint_id == 7


def test_saving_the_same_id_again_replaces_it(store):
    store.save(make_checkpoint(JOB, 4))
    again = Checkpoint(JOB, 4, {"0": {"p0": 1}}, [], 2.0)
    store.save(again)
    assert store.latest(JOB) == again


def test_in_memory_store_keeps_a_copy():
    store = InMemoryStore()
    checkpoint = make_checkpoint(JOB, 1)
    store.save(checkpoint)
    checkpoint.positions["0"]["p0"] = -1
    assert store.latest(JOB) == make_checkpoint(JOB, 1)


def test_sqlite_store_survives_reopening_and_uses_wal(tmp_path):
    path = tmp_path / "sub" / "checkpoints.db"
    store = SqliteStore(path)
    store.save(make_checkpoint(JOB, 9))
    store.close()
    reopened = SqliteStore(path)
    assert reopened.latest(JOB) == make_checkpoint(JOB, 9)
    reopened.close()
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_open_store_picks_the_store_of_the_profile(tmp_path):
    assert isinstance(open_store("in-memory"), InMemoryStore)
    sqlite = open_store("single-node-durable", sqlite_path=tmp_path / "c.db")
    assert isinstance(sqlite, SqliteStore)
    sqlite.close()
    with pytest.raises(ValueError, match="sqlite_path"):
        open_store("single-node-durable")
    with pytest.raises(ValueError, match="dsn"):
        open_store("distributed-durable")
    with pytest.raises(ValueError, match="unknown durability profile"):
        open_store("on-a-napkin")


def test_sqlite_saves_stay_whole_when_the_saver_is_killed(tmp_path):
    path = tmp_path / "checkpoints.db"
    seen = kill_saver_repeatedly("sqlite", str(path), lambda: SqliteStore(path), kills=15, seed=20240611)
    assert len(seen) >= 10 and seen[-1] > seen[0], f"too little progress to mean anything: {seen}"
    with sqlite3.connect(path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
