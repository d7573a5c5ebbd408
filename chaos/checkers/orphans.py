"""No orphans: after recovery and a graceful stop, no staged file is left in the output.

A staged file is hidden from readers by its name, so a leftover one loses nothing visible, but it
is a leak the connector's recovery should have cleaned up (or at least reported). Hudi instants are
judged on the timeline: a requested or inflight instant is staged only while the same instant time
has no completed file (Hudi keeps the requested/inflight files of completed instants).

This checker walks directories rather than tables: there is nothing to vectorise, and the walk
visits each directory entry once (`os.scandir`).
"""

from __future__ import annotations

import fnmatch
import os
import re
from pathlib import Path

from chaos.checkers.verdict import Verdict

SHOWN = 5

STAGED: tuple[tuple[str, str], ...] = (
    # two-phase Parquet sink, a closed, fsynced part awaiting its commit: `.pending-{job}-w{n}-c{ckpt}-….parquet`
    ("pending", ".pending-*"),
    # two-phase Parquet sink, a part still being written: `.inprogress-{job}-w{n}-….parquet`
    ("inprogress", ".inprogress-*"),
    # Delta/Iceberg/Parquet durable writes (write_durably): `.part-….parquet.inprogress` before its rename
    ("part-inprogress", ".part-*.inprogress"),
    # any other hidden file staged before a rename, e.g. a Hudi base file `.{fileId}_….parquet.inprogress`
    ("hidden-inprogress", ".*.inprogress"),
    # hidden temporaries of atomic writes: Hudi timeline `.chaos-{job}-w{n}-{hex}.tmp`, `.{name}.tmp`
    ("hidden-tmp", ".*.tmp"),
    # delta-rs commit staged before it is renamed to `_delta_log/{version}.json`
    ("delta-commit-tmp", "_commit_*.tmp"),
    # Hudi instant being written, `.hoodie/{t}.inflight` or `{t}.{action}.inflight`, with no completed `{t}`
    ("hudi-inflight", "*.inflight"),
    # Hudi instant requested, `.hoodie/{t}.commit.requested` etc., with no completed `{t}`
    ("hudi-requested", "*.requested"),
    # Hudi markers of an instant's files, `.hoodie/.temp/{t}/….marker.CREATE`: removed once it completes
    ("hudi-marker", "*"),
)
"""(kind, file-name pattern), first match wins. The Hudi kinds only apply inside `.hoodie/` (the
timeline, and `timeline/` of 1.x tables) and the marker kind only inside `.hoodie/.temp/`."""

HUDI_KINDS = {"hudi-inflight", "hudi-requested"}
_COMPILED = [(kind, re.compile(fnmatch.translate(pattern))) for kind, pattern in STAGED]
_COMPLETED = re.compile(r"(\d+)(?:_\d+)?\.[a-z]+")  # `{t}.commit`, `{t}.deltacommit`, 1.x `{t}_{done}.commit`
_INSTANT_TIME = re.compile(r"(\d+)")


def _kind(name: str, where: str) -> str | None:
    for kind, pattern in _COMPILED:
        if kind == "hudi-marker":
            if where == "marker":
                return kind
        elif kind in HUDI_KINDS:
            if where == "timeline" and pattern.match(name):
                return kind
        elif pattern.match(name):
            return kind
    return None


def _scan(root: Path) -> list[tuple[str, Path]]:
    found: list[tuple[str, Path]] = []
    stack: list[tuple[Path, str]] = [(root, "data")]
    while stack:
        directory, where = stack.pop()
        try:
            entries = list(os.scandir(directory))
        except (FileNotFoundError, NotADirectoryError):
            continue
        pending: list[tuple[str, str, Path]] = []  # (kind, instant time, path) judged after the listing
        completed: set[str] = set()
        for entry in entries:
            path = Path(entry.path)
            if entry.is_dir(follow_symlinks=False):
                if where == "marker":
                    sub = "marker"
                elif entry.name == ".hoodie":
                    sub = "hoodie"
                elif where == "hoodie" and entry.name == ".temp":
                    sub = "marker"
                elif where == "hoodie" and entry.name == "timeline":
                    sub = "timeline"
                elif (where, entry.name) in (("hoodie", "archived"), ("timeline", "history")):
                    continue  # archived instants (1.x: the LSM `timeline/history/`) are not staged work
                else:
                    sub = "data"
                stack.append((path, sub))
                continue
            timeline = where in ("hoodie", "timeline")
            kind = _kind(entry.name, "timeline" if timeline else where)
            if kind in HUDI_KINDS:
                instant = _INSTANT_TIME.match(entry.name)
                pending.append((kind, instant.group(1) if instant else entry.name, path))
            elif kind is not None:
                found.append((kind, path))
            elif timeline:
                done = _COMPLETED.fullmatch(entry.name)
                if done:
                    completed.add(done.group(1))
        found.extend((kind, path) for kind, instant, path in pending if instant not in completed)
    return found


def check_orphans(paths: list[Path]) -> Verdict:
    found = sorted((kind, path) for root in paths for kind, path in _scan(Path(root)))
    counts = {"orphans": len(found)} | {kind: 0 for kind, _ in STAGED}
    for kind, _ in found:
        counts[kind] += 1
    if not found:
        return Verdict("no-orphans", "pass", f"no staged files left in {len(paths)} output directories", counts)
    by_kind = ", ".join(f"{counts[kind]} {kind}" for kind, _ in STAGED if counts[kind])
    shown = ", ".join(str(p) for p in sorted(p for _, p in found)[:SHOWN])
    more = f" and {len(found) - SHOWN} more" if len(found) > SHOWN else ""
    return Verdict("no-orphans", "fail", f"{len(found)} staged files were left behind ({by_kind}): {shown}{more}",
                   counts)
