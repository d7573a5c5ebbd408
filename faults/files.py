"""Damage to a committed data file of the sink's output: a flipped bit, or a file cut short.

The file is the oldest data file of the sink's output (the first committed, so committed by the time
any fault fires after a commit), found by name: `*.parquet` in an `output*` directory, outside hidden
and staging names. A bit flip lands in the middle of the `payload` column's data in the first row group, past
its page header, so that it changes what a reader decodes (or makes it fail to decode) rather than
a statistic no one reads; a truncation cuts the file to half its length, footer and all. Both are
written in place and fsynced. The heal does nothing: media do not heal.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pyarrow.parquet as pq

from faults.catalog import CorruptFault
from faults.injector import FaultContext, Heal

log = logging.getLogger(__name__)
COLUMN = "payload"
"""The column whose data a bit flip damages: every record has one, and its checksum is checked."""


def inject(fault: CorruptFault, context: FaultContext) -> Heal:
    path = oldest_data_file(context.output_dirs)
    if path is None:
        raise FileNotFoundError("no committed data file (*.parquet) under "
                                f"{', '.join(str(d) for d in context.output_dirs) or 'no output directory'}")
    if fault.mode == "truncate":
        size = path.stat().st_size
        with open(path, "r+b") as file:
            file.truncate(size // 2)
            os.fsync(file.fileno())
        log.info("corrupt: cut %s from %d to %d bytes", path, size, size // 2)
    else:
        offset = flip_offset(path)
        with open(path, "r+b") as file:
            file.seek(offset)
            byte = file.read(1)[0]
            file.seek(offset)
            file.write(bytes([byte ^ 0x10]))
            os.fsync(file.fileno())
        log.info("corrupt: flipped bit 4 of byte %d of %s", offset, path)
    return lambda: None


def oldest_data_file(directories: tuple[Path, ...]) -> Path | None:
    """The oldest `*.parquet` of the sink's output under `directories`: a file whose path below the
    directory's parent runs through an `output*` directory (`output/`, `lake/output-delta/`, an
    Iceberg table `output_<run>`: not a source's input table in the same lake), outside hidden and
    staging names."""
    files = [path for directory in directories if directory.is_dir() for path in directory.rglob("*.parquet")
             if _output_file(path.relative_to(directory.parent).parts)]
    return min(files, key=lambda path: (path.stat().st_mtime_ns, str(path)), default=None)


def _output_file(parts: tuple[str, ...]) -> bool:
    return any(part.startswith("output") for part in parts[:-1]) and not any(
        part.startswith((".", "_")) for part in parts)


def flip_offset(path: Path) -> int:
    """Three quarters into the payload column's chunk of the first row group (past the page header
    at its start, the dictionary page's when it has one); the middle of the file when the file has
    no such column."""
    size = path.stat().st_size
    try:
        group = pq.ParquetFile(path).metadata.row_group(0)
        for index in range(group.num_columns):
            column = group.column(index)
            if column.path_in_schema == COLUMN:
                start = min(o for o in (column.dictionary_page_offset, column.data_page_offset) if o is not None)
                return min(start + column.total_compressed_size * 3 // 4, size - 1)
    except (OSError, ValueError, IndexError) as e:
        log.info("corrupt: %s has no readable footer (%s): flipping its middle byte", path, e)
    return size // 2
