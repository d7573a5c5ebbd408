"""The plug-in's seeded bug, which `chaos certify --connector postgres-2pc --mutants` must catch.

A plug-in's variants use the SDK's `SeededBug` as ours do: listed first among the bases, with
`bites` called where the bug changes what the driver does.
"""

from __future__ import annotations

from psycopg import sql

from chaos_postgres.database import connect
from chaos_postgres.sink import PostgresTwoPhaseSink
from drivers.sdk import CommitHandle, SeededBug


class RollbackAllOnRecoverSink(SeededBug, PostgresTwoPhaseSink):
    """Recovery rolls back every prepared transaction of the worker, the restored checkpoint's
    included, as an XA recovery that treats everything in doubt as an orphan would; and a commit
    that finds nothing prepared takes it for done. The restored checkpoint's rows are lost."""

    def recover(self, committed: list[CommitHandle]) -> None:
        self._buffer = []
        self._poison.clear()
        doomed = self._own_prepared()
        restored = {h.payload.get("gid") for h in committed}
        if restored & set(doomed):
            self.bites("rolled back the prepared transaction of the checkpoint it was restored to")
        self._run("recover", lambda: self._rollback(doomed))
        for handle in sorted(committed, key=lambda h: h.checkpoint_id):
            self.commit(handle)

    def _commit(self, gid: str) -> None:
        with connect(self.dsn) as conn:
            if self._prepared(conn, gid):
                conn.execute(sql.SQL("COMMIT PREPARED {}").format(sql.Literal(gid)))
