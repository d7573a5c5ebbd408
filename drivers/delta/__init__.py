"""Delta Lake connectors on the local filesystem, through the official `deltalake` package (delta-rs).

* `DeltaBatchSource` reads one snapshot (the table version current at `open`) file by file and row
  group by row group. The version is part of its positions, so a restore re-reads the same
  snapshot even when the table has moved on: the source is replayable.
* `DeltaBatchSink` appends each checkpoint with `write_deltalake`. The rows are visible at once,
  so a crash before the checkpoint is persisted appends the replayed rows again (best effort, at
  least once with a replayable source).
* `DeltaTwoPhaseSink` writes Parquet data files into the table directory at `prepare` and makes
  them visible at `commit` with one Delta commit holding their `add` actions plus a `txn`
  (app_id = "{job_id}-w{worker}", version = checkpoint id). Delta readers only read the files that
  the log references, so a prepared file is invisible by construction; the staged files live
  directly in the table directory under their final names `part-{job}-w{worker}-c{ckpt}-{n}.parquet`
  (written as hidden `.part-….inprogress` files, fsynced, then renamed), so a commit never moves
  or rewrites a file. delta-rs does not deduplicate by itself (delta-rs #2580): `commit` reads
  `transaction_version(app_id)` from a fresh snapshot and skips a checkpoint that is already in
  the log, and a commit that races another commit of the same app_id fails Delta's conflict check
  and is retried from that check. Idempotence relies on one app_id committing its checkpoints in
  increasing order, which the coordinator does (and `recover` sorts its handles).

Schema evolution (two-phase sink): a handle records the unified Arrow schema of its files; at
commit, columns the table does not have yet are added (nullable) with `alter.add_columns` in a
Delta commit of their own just before the data commit (`sink.commit.mid` falls between the two);
a column missing from a later batch reads as null. A column whose type differs from the table's is
cast at prepare when the cast is lossless (checked), and refused otherwise: Delta type widening is
not implemented here, and a silent lossy cast would corrupt records.
"""
