"""Lost unfsynced writes, against a real FUSE filesystem (lazyfs) and real runs: written data stays
in memory until fsync and a drop loses it while the names stay; a power cut under the sound
two-phase Parquet sink loses nothing; the seeded bug that skips one fsync fails readable-output
under the power cut and passes under a plain kill of every process, so only this fault catches it."""

from __future__ import annotations

import os

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from chaos.env.lazy_mount import LazyMount
from drivers.sdk.events import Event
from tests.integration.conftest import REPO

pytestmark = pytest.mark.integration
EXPERIMENTS = REPO / "experiments"


def test_lazyfs_keeps_writes_in_memory_until_fsync_and_a_power_cut_loses_them(tmp_path):
    recorded: list[tuple[str, dict]] = []
    output = tmp_path / "output"
    (output / "already").mkdir(parents=True)
    with LazyMount(output, tmp_path / "logs", lambda event, **fields: recorded.append((event, fields))) as mount:
        assert os.path.ismount(output) and (output / "already").is_dir()
        table = pa.table({"id": list(range(1000))})
        pq.write_table(table, output / ".staged.parquet")
        os.replace(output / ".staged.parquet", output / "renamed.parquet")  # renamed, never fsynced
        with open(output / "synced.parquet", "wb") as file:
            pq.write_table(table, file)
            file.flush()
            os.fsync(file.fileno())
        (output / "replaced.txt").write_text("never fsynced")
        with open(output / ".replacement.txt", "w") as file:
            file.write("fsynced, then renamed over it")
            file.flush()
            os.fsync(file.fileno())
        os.replace(output / ".replacement.txt", output / "replaced.txt")
        backing = mount.backing
        assert (backing / "renamed.parquet").stat().st_size == 0  # the disk has the name, not the data
        assert pq.read_table(output / "renamed.parquet").num_rows == 1000  # readers see the page cache
        assert (output / "replaced.txt").read_text() == "fsynced, then renamed over it"
        assert mount.lose_unfsynced() == 1
        assert (output / "replaced.txt").read_text() == "fsynced, then renamed over it"
        assert (output / "renamed.parquet").stat().st_size == 0  # the power cut: short, here empty
        assert pq.read_table(output / "synced.parquet").num_rows == 1000
        (output / "after.txt").write_text("written after the cut, never fsynced")
    assert recorded == [(Event.STORAGE_LOST_WRITES, {"files": 1, "directory": "output"})]
    assert not os.path.ismount(output) and not mount.backing.exists()
    assert (output / "after.txt").read_text().startswith("written after")  # a clean unmount persists it
    assert sorted(p.name for p in output.iterdir()) == ["after.txt", "already", "renamed.parquet", "replaced.txt",
                                                         "synced.parquet"]


def test_a_power_cut_under_the_two_phase_parquet_sink_loses_nothing(run_experiment):
    run = run_experiment(EXPERIMENTS / "lose-unfsynced.yaml")
    assert run.code == 0, run.stdout + run.stderr
    lost = [e for e in run.history() if e["event"] == Event.STORAGE_LOST_WRITES]
    assert len(lost) == 1 and lost[0]["files"] >= 1, lost  # the cut struck files being written
    killed = {e["process"] for e in run.history() if e["event"] == Event.PROCESS_KILL}
    assert killed == {"coordinator", "worker-0", "worker-1"}
    for invariant in ("readable-output", "no-loss", "duplicates", "atomic-visibility", "faults-met-traffic"):
        assert run.verdict(invariant)["status"] == "pass", run.verdict(invariant)


def test_a_sink_that_skips_one_fsync_is_caught_by_the_power_cut_and_only_by_it(run_experiment, tmp_path):
    run = run_experiment(EXPERIMENTS / "mutants" / "skip-fsync.yaml")
    assert run.code == 1, run.stdout + run.stderr
    assert run.verdict("readable-output")["status"] == "fail", run.result["verdicts"]
    assert any(e["event"] == Event.MUTANT_ACTIVE for e in run.history())
    # The same bug, the same schedule, a plain kill of every process instead: the page cache keeps it all.
    spec = yaml.safe_load((EXPERIMENTS / "mutants" / "skip-fsync.yaml").read_text())
    spec["name"] = "mutant-skip-fsync-killed"
    spec["faults"] = [{"kind": "kill", "target": name, "at_commits": 3, "duration": "1s"}
                      for name in ("coordinator", "worker-0")]
    killed = tmp_path / "skip-fsync-killed.yaml"
    killed.write_text(yaml.safe_dump(spec))
    plain = run_experiment(killed)
    assert plain.code == 0, plain.stdout + plain.stderr
    assert any(e["event"] == Event.MUTANT_ACTIVE for e in plain.history())
