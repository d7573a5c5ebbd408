"""Iceberg connectors on pyiceberg: a batch source, a plain append sink and a two-phase sink.

The catalog is pyiceberg's `SqlCatalog`: an embedded SQLite file by default, or PostgreSQL (the
distributed-durable setup, reached over a link the testbed can partition). The warehouse is a
local directory.

The two-phase sink follows Iceberg's Flink committer:
  prepare  writes the checkpoint's rows as Parquet data files under the table's data location.
           Nothing references them yet, so no reader can see them (Iceberg readers only read the
           files a snapshot lists).
  commit   adds those files in ONE snapshot whose summary carries `chaos.job-id`, `chaos.worker`
           and `chaos.max-committed-checkpoint-id` (Flink: `flink.job-id`,
           `flink.max-committed-checkpoint-id`). Before committing it walks the current snapshot's
           ancestry: a checkpoint at or below the highest committed one for this job and worker is
           already in the table. That is what makes re-committing after a lost response safe
           (iceberg #2808).
  race     the check and the commit use the same loaded metadata, and the catalog commit is
           optimistic (it asserts that `main` still points at the snapshot the check saw). When a
           restarted committer lands the same checkpoint first (iceberg #14425), our commit fails
           with CommitFailedException, and we reload and re-check instead of retrying blindly.
           pyiceberg's own commit retry (`commit.retry.num-retries`, default 4) would rebase the
           append onto the new head WITHOUT re-checking, and publish the files a second time, so
           it is switched off for these commits (in memory only; see `_no_blind_retry`).
"""
