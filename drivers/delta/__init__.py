"""Delta Lake connectors on the local filesystem, through the official `deltalake` package (delta-rs).

* `DeltaBatchSource` reads one snapshot (the table version current at `open`) file by file and row
  group by row group. The version is part of its positions, so a restore re-reads the same
  snapshot even when the table has moved on: the source is replayable.
* `DeltaBatchSink` (batch_sink.py) appends each checkpoint at `prepare`: it writes the data files
  itself, one by one, and adds them to the log in one commit. The rows are visible at once, so a
  crash before the checkpoint is persisted appends the replayed rows again (best effort, at least
  once with a replayable source).
* `DeltaTwoPhaseSink` writes Parquet data files into the table directory at `prepare` and makes
  them visible at `commit` with one Delta commit holding their `add` actions plus a `txn`
  (app_id = "{job_id}-w{worker}", version = checkpoint id). Delta readers only read the files that
  the log references, so a prepared file is invisible by construction; the staged files live
  directly in the table directory under their final names `part-{job}-w{worker}-c{ckpt}-{n}.parquet`
  (written as hidden `.part-….inprogress` files, fsynced, then renamed), so a commit never moves
  a file (it rewrites one in place only if the table was widened since `prepare`). delta-rs does
  not deduplicate by itself (delta-rs #2580): `commit` reads `transaction_version(app_id)` from a
  fresh snapshot and skips a checkpoint that is already in the log, and a commit that races
  another commit of the same app_id fails Delta's conflict check and is retried from that check.
  Idempotence relies on one app_id committing its checkpoints in increasing order, which the
  coordinator does (and `recover` sorts its handles).

Schema evolution (both sinks, drivers/delta/evolution.py): columns the table does not have yet are
added (nullable) with `alter.add_columns` in a Delta commit of their own just before the data
commit (`sink.commit.mid` falls between the two in the two-phase sink); a column missing from a
later batch reads as null. A column that arrives in a wider type (int32 to int64) widens the table:
delta-rs cannot enable Delta's `typeWidening` feature, so every data file is rewritten under the
wider types and swapped in by one overwrite commit that lands on the version it read or not at all.
Narrower rows are cast up; any other type difference is cast only when lossless (checked), and
refused otherwise, since a silent lossy cast would corrupt records.
"""
