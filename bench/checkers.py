"""Checker throughput: the real checkers (loss, duplicates, phantoms) against the same checks written
with plain Python sets, dicts and a Counter, on 1M and 10M synthetic records.

The checkers count dense ids by position (numpy arrays indexed by id); their general, hash-based
path (pyarrow `unique`, `is_in`, `group_by`, a join), which they fall back to for other ids, is
timed too, on the same data. Each phase also reports its peak resident memory (`ru_maxrss`, its
high-water mark reset before the phase where Linux allows it).

Why: every run reads its whole output back and checks it, so checking must stay cheap as workloads
grow; this shows how much each path buys over the obvious implementation, where the time goes, and
what memory it takes.
"""

from __future__ import annotations

import argparse
import resource
import zlib
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from bench.common import median, show, timed, write_results
from chaos.checkers.duplicates import check_duplicates, duplicates_by_hash
from chaos.checkers.loss import check_loss, lost_by_hash
from chaos.checkers.phantoms import check_phantoms, phantoms_by_join
from drivers.sdk.records import SCHEMA

POOL = 4096  # distinct payloads (and their CRC32s), reused so generating 10M records stays vectorised
LOST, DUPLICATED, TWICE_DUPLICATED, PHANTOMS, CORRUPTED = 7, 5, 1, 3, 4


@dataclass(frozen=True)
class Counts:
    lost: int
    duplicated_ids: int
    extra_copies: int
    phantoms: int
    corrupted: int


EXPECTED = Counts(LOST, DUPLICATED + TWICE_DUPLICATED, DUPLICATED + 2 * TWICE_DUPLICATED, PHANTOMS, CORRUPTED)


def synthetic(n: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """The expected records (truth), and an output that lost, duplicated, invented and corrupted a few."""
    rng = np.random.default_rng(seed)
    payloads = [rng.bytes(16).hex() for _ in range(POOL)]
    pool = pa.array(payloads, pa.string())
    crcs = pa.array([zlib.crc32(p.encode()) for p in payloads], pa.int64())
    ids = np.arange(n, dtype=np.int64)
    slot = pa.array(ids % POOL)
    truth = pa.table([pa.array(ids), pc.take(pa.array([f"k{i}" for i in range(100)]), pa.array(ids % 100)),
                      pa.array(np.zeros(n, dtype=np.int64)), pc.take(pool, slot), pc.take(crcs, slot)],
                     schema=SCHEMA)
    picked = rng.choice(n, LOST + DUPLICATED + TWICE_DUPLICATED + CORRUPTED, replace=False)
    lost, dup = picked[:LOST], picked[LOST:LOST + DUPLICATED]
    twice = picked[LOST + DUPLICATED:LOST + DUPLICATED + TWICE_DUPLICATED]
    corrupted = picked[LOST + DUPLICATED + TWICE_DUPLICATED:]
    kept = np.setdiff1d(ids, lost)
    order = np.concatenate([rng.permutation(kept), dup, twice, twice])
    output = truth.take(pa.array(order))
    bad = pc.is_in(output["id"], value_set=pa.array(corrupted))
    output = output.set_column(3, "payload", pc.if_else(bad, "corrupted", output["payload"]))
    phantom_ids = np.arange(n, n + PHANTOMS, dtype=np.int64)
    phantom = pa.table([pa.array(phantom_ids), pa.array(["k0"] * PHANTOMS), pa.array([0] * PHANTOMS, pa.int64()),
                        pc.take(pool, [0] * PHANTOMS), pc.take(crcs, [0] * PHANTOMS)], schema=SCHEMA)
    return truth, pa.concat_tables([output, phantom]).combine_chunks()


def arrow_checks(truth: pa.Table, output: pa.Table) -> tuple[Counts, dict[str, float]]:
    """The project's checkers, as the runner calls them (truth doubles as the expected table): dense
    ids, so they count by position."""
    loss, t_loss = timed(lambda: check_loss(truth, output, required=True))
    dups, t_dups = timed(lambda: check_duplicates(output, forbidden=True))
    phantoms, t_phantoms = timed(lambda: check_phantoms(truth, output))
    counts = Counts(loss.counts["lost"], dups.counts["duplicated_ids"], dups.counts["extra_copies"],
                    phantoms.counts["phantoms"], phantoms.counts["corrupted"])
    return counts, {"loss": t_loss, "duplicates": t_dups, "phantoms": t_phantoms}


def general_checks(truth: pa.Table, output: pa.Table) -> tuple[Counts, dict[str, float]]:
    """The checkers' general path, the one every id took before the fast path (pyarrow hashing)."""
    (_, lost, _), t_loss = timed(lambda: lost_by_hash(truth, output))
    (dup_ids, extra, _), t_dups = timed(lambda: duplicates_by_hash(output))
    (phantom, corrupted, _), t_phantoms = timed(lambda: phantoms_by_join(truth, output))
    return Counts(lost, dup_ids, extra, phantom, corrupted), {"loss": t_loss, "duplicates": t_dups,
                                                             "phantoms": t_phantoms}


def python_checks(truth_ids: list[int], truth_sums: list[int], out_ids: list[int], out_payloads: list[str],
                  out_sums: list[int]) -> tuple[Counts, dict[str, float]]:
    """The same checks with a set of ids, a Counter and a dict of expected checksums."""
    def loss() -> int:
        present = set(out_ids)
        return sum(1 for i in set(truth_ids) if i not in present)

    def duplicates() -> tuple[int, int]:
        repeated = [c for c in Counter(out_ids).values() if c > 1]
        return len(repeated), sum(c - 1 for c in repeated)

    def phantoms() -> tuple[int, int]:
        expected = dict(zip(truth_ids, truth_sums))
        phantom = corrupted = 0
        for i, payload, crc in zip(out_ids, out_payloads, out_sums):
            want = expected.get(i)
            if want is None:
                phantom += 1
            elif crc != want or zlib.crc32(payload.encode()) != want:
                corrupted += 1
        return phantom, corrupted

    lost, t_loss = timed(loss)
    (dup_ids, extra), t_dups = timed(duplicates)
    (phantom, corrupted), t_phantoms = timed(phantoms)
    return Counts(lost, dup_ids, extra, phantom, corrupted), {"loss": t_loss, "duplicates": t_dups,
                                                             "phantoms": t_phantoms}


def reset_peak_rss() -> bool:
    """Start a new high-water mark of resident memory (Linux: /proc/self/clear_refs), so that
    `ru_maxrss` reads the peak of what follows rather than of the whole process; False elsewhere.
    Arrow's allocator first returns the memory it keeps cached, or a phase could reuse it unseen."""
    pa.default_memory_pool().release_unused()
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def peak_rss_mib() -> int:
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)  # KiB on Linux


def repeat(label: str, reps: int, check: Callable[..., tuple[Counts, dict[str, float]]], *args: Any
           ) -> list[dict[str, float]]:
    runs = []
    for _ in range(reps):
        counts, times = check(*args)
        assert counts == EXPECTED, f"{label} found {counts}, expected {EXPECTED}"
        runs.append(times)
    return runs


def bench_size(n: int, reps: int) -> dict[str, Any]:
    reset = reset_peak_rss()
    (truth, output), t_gen = timed(lambda: synthetic(n))
    rss = {"generate_peak": peak_rss_mib()}
    reset_peak_rss()
    rss["data"] = peak_rss_mib()  # just after a reset, the peak is what is resident now: both tables
    arrow_runs = repeat("the checkers", reps, arrow_checks, truth, output)
    rss["checkers_peak"] = peak_rss_mib()
    reset_peak_rss()
    general_runs = repeat("the general path", reps, general_checks, truth, output)
    rss["general_peak"] = peak_rss_mib()
    reset_peak_rss()
    columns, t_lists = timed(lambda: ([truth["id"].to_pylist(), truth["checksum"].to_pylist()],
                                      [output[c].to_pylist() for c in ("id", "payload", "checksum")]))
    python_runs = repeat("plain Python", reps, python_checks, *columns[0], *columns[1])
    rss["python_peak"] = peak_rss_mib()  # with its lists
    del columns

    def summary(runs: list[dict[str, float]]) -> dict[str, float]:
        per = {k: round(median([r[k] for r in runs]), 4) for k in runs[0]}
        return {**per, "total": round(median([sum(r.values()) for r in runs]), 4)}

    arrow, general, python = summary(arrow_runs), summary(general_runs), summary(python_runs)
    return {"records": n, "output_rows": output.num_rows, "reps": reps, "generate_seconds": round(t_gen, 2),
            "to_pylist_seconds": round(t_lists, 3), "pyarrow_seconds": arrow, "general_seconds": general,
            "python_seconds": python, "pyarrow_records_per_s": round(n / arrow["total"]),
            "general_records_per_s": round(n / general["total"]), "python_records_per_s": round(n / python["total"]),
            "speedup": round(python["total"] / arrow["total"], 2),
            "speedup_with_to_pylist": round((python["total"] + t_lists) / arrow["total"], 2),
            "speedup_over_general": round(general["total"] / arrow["total"], 2),
            "general_speedup": round(python["total"] / general["total"], 2),
            "rss_mib": rss, "rss_peak_reset": reset, "found": asdict(EXPECTED)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated record counts")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per size (the median is reported)")
    args = parser.parse_args()
    results = []
    for n in (int(s) for s in args.sizes.split(",")):
        results.append(bench_size(n, args.reps))
    rows: list[tuple[object, ...]] = []
    for r in results:
        a, g, p, n, rss = r["pyarrow_seconds"], r["general_seconds"], r["python_seconds"], r["records"], r["rss_mib"]
        rows.append((n, "by position (checkers)", a["loss"], a["duplicates"], a["phantoms"], a["total"],
                     r["pyarrow_records_per_s"], rss["checkers_peak"]))
        rows.append((n, "hashing (general path)", g["loss"], g["duplicates"], g["phantoms"], g["total"],
                     r["general_records_per_s"], rss["general_peak"]))
        rows.append((n, "plain Python", p["loss"], p["duplicates"], p["phantoms"], p["total"],
                     r["python_records_per_s"], rss["python_peak"]))
        rows.append((n, "to_pylist", "", "", "", r["to_pylist_seconds"], "", ""))
        rows.append((n, "resident, tables built", "", "", "", "", "", rss["data"]))
        rows.append((n, "Python / position", "", "", "", f"x{r['speedup']}",
                     f"x{r['speedup_with_to_pylist']} w/ to_pylist", ""))
        rows.append((n, "hashing / position", "", "", "", f"x{r['speedup_over_general']}", "", ""))
    show("Checker throughput (seconds, median of reps; peak RSS in MiB)",
         ["records", "checkers", "loss", "dups", "phantoms", "total", "records/s", "peak RSS"], rows,
         note=f"all found {asdict(EXPECTED)}; to_pylist is plain Python's input conversion, not in its total; "
              "a / b is a's total over b's", left=2)
    write_results("checkers", {"results": results})


if __name__ == "__main__":
    main()
