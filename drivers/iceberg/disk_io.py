"""A pyiceberg FileIO that lets injected disk faults strike each file pyiceberg writes.

pyiceberg writes an append's files itself (data files, then the manifest, then the manifest list),
all through the table's FileIO. Wrapping that FileIO puts a disk-fault check right before each file
is created, so a fault can land between two file writes of one commit, as a failing disk would,
rather than only before the whole transaction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from pyiceberg.io import FileIO, InputFile, OutputFile, OutputStream

from drivers.sdk.diskfaults import check_disk

if TYPE_CHECKING:
    from pyiceberg.table import Table

    from drivers.sdk.diskfaults import DiskFaults


class _CheckedOutputFile(OutputFile):
    def __init__(self, inner: OutputFile, disk: DiskFaults, who: str):
        super().__init__(inner.location)
        self._inner, self._disk, self._who = inner, disk, who

    def __len__(self) -> int:
        return len(self._inner)

    def exists(self) -> bool:
        return self._inner.exists()

    def to_input_file(self) -> InputFile:
        return self._inner.to_input_file()

    def create(self, overwrite: bool = False) -> OutputStream:
        check_disk(self._disk, self._who, "write", self.location)
        return self._inner.create(overwrite=overwrite)


class DiskFaultFileIO(FileIO):
    """Delegates everything to the table's own FileIO; only file creation is checked first."""

    def __init__(self, inner: FileIO, disk: DiskFaults, who: str):
        super().__init__(inner.properties)
        self._inner, self._disk, self._who = inner, disk, who

    def new_input(self, location: str) -> InputFile:
        return self._inner.new_input(location)

    def new_output(self, location: str) -> OutputFile:
        return _CheckedOutputFile(self._inner.new_output(location), self._disk, self._who)

    def delete(self, location: str | InputFile | OutputFile) -> None:
        self._inner.delete(location)


def with_disk_faults(table: Table, disk: DiskFaults | None, who: str) -> Table:
    """`table`, writing through a checked FileIO when fault injection is on (`disk`)."""
    if disk is not None and not isinstance(table.io, DiskFaultFileIO):
        table.io = DiskFaultFileIO(table.io, disk, who)
    return table
