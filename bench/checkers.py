"""Checker throughput: the real checkers (loss, duplicates, phantoms) against the same checks written
with plain Python sets, dicts and a Counter, on 1M and 10M synthetic records; then the checkers on an
output streamed in record batches, at 10M and 100M records.

The checkers count dense ids by position (numpy arrays indexed by id); their general, hash-based
path (pyarrow `unique`, `is_in`, `group_by`, a join), which they fall back to for other ids, is
timed too, on the same data. Each phase also reports its peak resident memory (`ru_maxrss`, its
high-water mark reset before the phase where Linux allows it), and each size the 1/5/15-minute load
averages at its start and end, since other work on the machine skews the figures.

Streamed, the output is never a table: it is made a batch at a time as the checkers read it
(`Batches`), as a Parquet reader's `iter_batches` would hand it to them, and only the truth (the
expected records) is held in memory. The time of each streamed check includes making its batches;
making them alone is timed too.

Why: every run reads its whole output back and checks it, so checking must stay cheap as workloads
grow; this shows how much each path buys over the obvious implementation, where the time goes, and
what memory it takes.
"""

from __future__ import annotations

import argparse
import os
import resource
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

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
BATCH = 1_000_000  # rows per streamed batch


@dataclass(frozen=True)
class Counts:
    lost: int
    duplicated_ids: int
    extra_copies: int
    phantoms: int
    corrupted: int


EXPECTED = Counts(LOST, DUPLICATED + TWICE_DUPLICATED, DUPLICATED + 2 * TWICE_DUPLICATED, PHANTOMS, CORRUPTED)


def payload_pool(rng: np.random.Generator) -> tuple[pa.Array, np.ndarray]:
    """POOL distinct 32-character payloads, and their CRC32s."""
    payloads = [rng.bytes(16).hex() for _ in range(POOL)]
    return pa.array(payloads, pa.string()), np.array([zlib.crc32(p.encode()) for p in payloads], np.int64)


def synthetic(n: int, seed: int = 7) -> tuple[pa.Table, pa.Table]:
    """The expected records (truth), and an output that lost, duplicated, invented and corrupted a few."""
    rng = np.random.default_rng(seed)
    pool, crc_values = payload_pool(rng)
    crcs = pa.array(crc_values)
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


@dataclass(frozen=True)
class Batches:
    """A synthetic output of `records` records as record batches, made afresh each time it is iterated,
    so that the records never exist all at once. With k batches, batch b holds ids b, b + k, b + 2k, ...
    in one fixed shuffled order, so that every batch spans the whole id range, as in a shuffled output.
    Row j of any batch gets payload j mod POOL, so the payload, checksum, key and event-time columns are
    built once and shared by every batch: only the ids are computed per batch. The lost and corrupted
    records are the last rows of a few batches, left off them; a damage batch in the middle of the
    stream carries the duplicate copies, the corrupted records and the phantoms."""

    records: int
    count: int
    shared: dict[int, tuple[np.ndarray, list[pa.Array]]]
    """By batch length: the order of the rows j, and the columns after the id."""
    cut: dict[int, int]
    """How many rows each damaged batch leaves off its end."""
    damage: pa.RecordBatch

    def __iter__(self) -> Iterator[pa.RecordBatch]:
        for b in range(self.count):
            if b == self.count // 2:
                yield self.damage
            order, columns = self.shared[self.rows(b)]
            batch = pa.RecordBatch.from_arrays([pa.array(order * self.count + b), *columns], schema=SCHEMA)
            yield batch.slice(0, batch.num_rows - self.cut.get(b, 0))

    def rows(self, b: int) -> int:
        return len(range(b, self.records, self.count))


def streamed(n: int, seed: int = 7) -> tuple[pa.Table, Batches]:
    """The expected records (id, payload, checksum), and the output as `Batches` that lost, duplicated,
    invented and corrupted a few. The expected payloads are dictionary-encoded (an int16 index into the
    pool per record), which keeps 100M expected records at 1.8 GB."""
    rng = np.random.default_rng(seed)
    pool, crcs = payload_pool(rng)
    count = -(-n // BATCH)
    slot = np.empty(n, np.int16)
    for start in range(0, n, BATCH):  # the payload of id i is slot (i // count) % POOL: its row in its batch
        slot[start:start + BATCH] = np.arange(start, min(n, start + BATCH)) // count % POOL
    truth = pa.table({"id": pa.array(np.arange(n)), "payload": pa.DictionaryArray.from_arrays(pa.array(slot), pool),
                      "checksum": pa.array(crcs[slot])})
    order, keys = rng.permutation(-(-n // count)), pa.array([f"k{i}" for i in range(100)])
    shared = {}
    for rows in {len(range(b, n, count)) for b in range(count)}:
        j = order[order < rows]
        shared[rows] = (j, [keys.take(pa.array(j % 100)), pa.array(np.zeros(j.size, np.int64)),
                            pool.take(pa.array(j % POOL)), pa.array(crcs[j % POOL])])
    cut = Counter(int(b) for b in rng.integers(count, size=LOST + CORRUPTED))  # the last rows of these batches
    left_out = np.concatenate([shared[len(range(b, n, count))][0][-rows:] * count + b for b, rows in sorted(cut.items())])
    lost, corrupted = left_out[:LOST], left_out[LOST:]
    kept = rng.choice(n, 2 * (DUPLICATED + TWICE_DUPLICATED), replace=False)
    kept = kept[~np.isin(kept, left_out)][:DUPLICATED + TWICE_DUPLICATED]
    dup, twice = kept[:DUPLICATED], kept[DUPLICATED:]
    copies = np.concatenate([dup, twice, twice, corrupted])
    ids = np.concatenate([copies, np.arange(n, n + PHANTOMS)])
    slots = np.concatenate([slot[copies], np.zeros(PHANTOMS, np.int16)])
    payloads = pool.take(pa.array(slots)).to_pylist()
    payloads[copies.size - CORRUPTED:copies.size] = ["corrupted"] * CORRUPTED
    damage = pa.RecordBatch.from_arrays([pa.array(ids), pa.array(["k0"] * ids.size), pa.array(np.zeros(ids.size, np.int64)),
                                         pa.array(payloads, pa.string()), pa.array(crcs[slots])], schema=SCHEMA)
    assert lost.size == LOST and dup.size == DUPLICATED and twice.size == TWICE_DUPLICATED
    return truth, Batches(n, count, shared, dict(cut), damage)


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


def cpu_seconds() -> float:
    """CPU time of this process so far, user and system, all threads."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def streamed_checks(truth: pa.Table, batches: Batches) -> tuple[Counts, dict[str, dict[str, float]]]:
    """The checkers on the streamed output, each reading it once, with each one's wall and CPU seconds
    and peak RSS (MiB). CPU time tells how much work a check did whatever else ran on the machine."""
    checks = {"loss": lambda: check_loss(truth, batches, required=True),
              "duplicates": lambda: check_duplicates(batches, forbidden=True),
              "phantoms": lambda: check_phantoms(truth, batches)}
    verdicts, figures = {}, {}
    for name, check in checks.items():
        reset_peak_rss()
        cpu = cpu_seconds()
        verdicts[name], wall = timed(check)
        figures[name] = {"seconds": wall, "cpu_seconds": cpu_seconds() - cpu, "rss_mib": peak_rss_mib()}
    loss, dups, phantoms = verdicts["loss"], verdicts["duplicates"], verdicts["phantoms"]
    counts = Counts(loss.counts["lost"], dups.counts["duplicated_ids"], dups.counts["extra_copies"],
                    phantoms.counts["phantoms"], phantoms.counts["corrupted"])
    return counts, figures


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
    load = os.getloadavg()
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
            "rss_mib": rss, "rss_peak_reset": reset,
            "load_average": [round(x, 2) for x in (*load, *os.getloadavg())], "found": asdict(EXPECTED)}


def bench_streamed(n: int, reps: int) -> dict[str, Any]:
    load = os.getloadavg()
    reset = reset_peak_rss()
    (truth, batches), t_gen = timed(lambda: streamed(n))
    rss = {"generate_peak": peak_rss_mib()}
    reset_peak_rss()
    rss["truth"] = peak_rss_mib()  # just after a reset, the peak is what is resident now: the truth
    rows, t_alone = timed(lambda: sum(batch.num_rows for batch in batches))
    runs = []
    for _ in range(reps):
        counts, figures = streamed_checks(truth, batches)
        assert counts == EXPECTED, f"the streamed checkers found {counts}, expected {EXPECTED}"
        runs.append(figures)

    def summary(figure: str) -> dict[str, float]:
        per = {k: round(median([run[k][figure] for run in runs]), 3) for k in runs[0]}
        return {**per, "total": round(median([sum(run[k][figure] for k in run) for run in runs]), 3)}

    seconds = summary("seconds")
    return {"records": n, "output_rows": rows, "batches": batches.count + 1, "reps": reps,
            "generate_seconds": round(t_gen, 2), "batches_alone_seconds": round(t_alone, 3), "seconds": seconds,
            "cpu_seconds": summary("cpu_seconds"), "records_per_s": round(n / seconds["total"]),
            "rss_mib": {**rss, **{k: max(run[k]["rss_mib"] for run in runs) for k in runs[0]}},
            "rss_peak_reset": reset, "load_average": [round(x, 2) for x in (*load, *os.getloadavg())],
            "found": asdict(EXPECTED)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--sizes", default="1000000,10000000", help="comma-separated record counts")
    parser.add_argument("--streamed", default="10000000,100000000",
                        help="comma-separated record counts to check streamed in record batches ('' for none)")
    parser.add_argument("--reps", type=int, default=3, help="repetitions per size (the median is reported)")
    args = parser.parse_args()
    streamed_results = [bench_streamed(int(n), args.reps) for n in args.streamed.split(",") if n]  # first: a fresh heap
    results = []
    for n in (int(s) for s in args.sizes.split(",") if s):
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
    rows = []
    for r in streamed_results:
        for label, key in (("wall seconds", "seconds"), ("CPU seconds", "cpu_seconds")):
            t = r[key]
            rows.append((r["records"], label, t["loss"], t["duplicates"], t["phantoms"], t["total"],
                         round(r["records"] / t["total"]), ""))
        rss = r["rss_mib"]
        rows.append((r["records"], "peak RSS (MiB)", rss["loss"], rss["duplicates"], rss["phantoms"], "", "",
                     rss["truth"]))
    show("Streamed checks: the output made in batches of 1M as the checkers read it (median of reps)",
         ["records", "figure", "loss", "dups", "phantoms", "total", "records/s", "truth resident"], rows,
         note="each check reads the stream once; its time includes making the batches, "
              + ", ".join(f"{r['batches_alone_seconds']} s alone at {r['records']:,}" for r in streamed_results),
         left=2)
    write_results("checkers", {"results": results, "streamed": streamed_results})


if __name__ == "__main__":
    main()
