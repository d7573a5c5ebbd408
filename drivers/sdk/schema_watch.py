"""Saying when the schema that records were written under changes mid-stream (`schema.change_seen`).

Certification's schema-evolution scenario needs evidence that the change reached the pipeline.
Where it shows depends on the source: a stream source hands out each record under the schema it
was produced with, so the worker sees the records' schema change; a table source reads every file
under the snapshot's schema, so only the source sees that a file was written under another one.
Both say so through this one watch.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import pyarrow as pa

from drivers.sdk.events import Event

if TYPE_CHECKING:
    from drivers.sdk.history import History


class SchemaWatch:
    def __init__(self, history: History | None, worker: int, seen_in: str, ignore: frozenset[str] = frozenset()):
        """`seen_in` names what is watched (`records`, `source files`); `ignore`: columns that are
        not part of the written schema (a split tag)."""
        self.history = history
        self.worker = worker
        self.seen_in = seen_in
        self.ignore = ignore
        self.schema: pa.Schema | None = None

    def see(self, schema: pa.Schema, first_id: int | None) -> None:
        """The schema of the next records (or file), whose first record has id `first_id`."""
        schema = pa.schema([f for f in schema if f.name not in self.ignore])
        if self.schema is not None and not schema.equals(self.schema) and self.history is not None:
            before, after = set(self.schema.names), set(schema.names)
            changed = sorted(n for n in before & after if self.schema.field(n).type != schema.field(n).type)
            self.history.append(Event.SCHEMA_CHANGE_SEEN, worker=self.worker, seen_in=self.seen_in,
                                first_id=first_id, added=sorted(after - before), dropped=sorted(before - after),
                                changed=changed)
        self.schema = schema
