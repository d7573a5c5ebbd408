"""Durable Parquet file writes: a hidden temporary file, fsync, atomic rename, fsync of the directory.

Readers (pyarrow datasets skip names starting with `.` or `_`) never see a partial file, and a
file that is visible has survived a crash of the writer.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq


def write_durably(table: pa.Table, directory: Path, name: str, **options: Any) -> Path:
    """`options` go to pyarrow.parquet.write_table (e.g. row_group_size)."""
    directory.mkdir(parents=True, exist_ok=True)
    final = directory / name
    staged = directory / f".{name}.inprogress"
    with open(staged, "wb") as f:
        pq.write_table(table, f, **options)
        f.flush()
        os.fsync(f.fileno())
    os.replace(staged, final)
    fsync_dir(directory)
    return final


def fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
