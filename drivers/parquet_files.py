"""Durable Parquet file writes: a hidden temporary file, fsync, atomic rename, fsync of the directory.

Readers (pyarrow datasets skip names starting with `.` or `_`) never see a partial file, and a
file that is visible has survived a crash of the writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from drivers.sdk.diskfaults import check_disk

if TYPE_CHECKING:
    from drivers.sdk.diskfaults import DiskFaults


def write_durably(table: pa.Table, directory: Path, name: str, *,
                  disk: DiskFaults | None = None, who: str = "", **options: Any) -> Path:
    """`options` go to pyarrow.parquet.write_table (e.g. row_group_size).

    Disk-fault injection: with `disk` (default None: no checks at all), `disk.check(who, op)` runs
    before the write, the file fsync, the rename and the directory fsync, and may raise
    OSError(EIO/ENOSPC) or stall there, as a failing disk would."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    staged = directory / f".{name}.inprogress"
    with open(staged, "wb") as f:
        check_disk(disk, who, "write", staged)  # disk-fault injection point
        pq.write_table(table, f, **options)
        f.flush()
        check_disk(disk, who, "fsync", staged)  # disk-fault injection point
        os.fsync(f.fileno())
    check_disk(disk, who, "rename", final)  # disk-fault injection point
    os.replace(staged, final)
    fsync_dir(directory, disk=disk, who=who)
    return final


def fsync_dir(directory: Path, *, disk: DiskFaults | None = None, who: str = "") -> None:
    """With `disk` (default None), a disk-fault check runs first (op `fsync_dir`)."""
    check_disk(disk, who, "fsync_dir", directory)  # disk-fault injection point
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
