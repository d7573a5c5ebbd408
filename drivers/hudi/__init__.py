"""Apache Hudi on the local file system: a two-phase copy-on-write sink and a batch source.

hudi-rs (the `hudi` package) reads Hudi tables but cannot write them, so the sink writes the table
format itself, the way Hudi's Java writer lays out a version-6 table (timeline layout 1):

  `.hoodie/hoodie.properties`            table config (COPY_ON_WRITE, record key `id`, non-partitioned)
  `.hoodie/{t}.commit.requested`         instant `t` is requested (our owner tags in its metadata)
  `.hoodie/{t}.inflight`                 instant `t` is being written (planned write stats)
  `.hoodie/.temp/{t}/{file}.marker.CREATE`  direct markers: every base file `t` creates, written first
  `{fileId}_{writeToken}_{t}.parquet`    base files, each a new file group (inserts only)
  `.hoodie/{t}.commit`                   instant `t` completed: JSON commit metadata

Phases, in the shape of Flink's TwoPhaseCommitSinkFunction over Hudi's timeline:
  `prepare`  rolls back this worker's failed instants, then requested -> inflight -> markers and
             fsynced base files. Nothing is visible: a reader only trusts completed instants.
  `commit`   writes `{t}.commit` atomically (tmp, fsync, link, fsync of `.hoodie/`). That single
             file is the visibility point; the requested/inflight files and markers are removed
             afterwards. Committing an instant that already has its `.commit` is a no-op.
  `recover`  rolls back every other pending instant of this job and worker, then commits the
             restored checkpoint's handles (re-committing after a failure between checkpoint and
             commit, hudi #18051, instead of rolling those back and losing them).

What hudi-rs (`hudi` 0.5.0, observed; tests/unit/test_hudi_connectors.py pins it down) shows of
a v6 table: a base file is visible when its instant is a completed commit *or when its instant
time is earlier than the first instant still on the timeline*, the rule by which Java Hudi treats
files of archived commits as committed (`containsOrBeforeTimelineStarts`; apache/hudi#7738,
HUDI-5569, is about failed early commits leaking through it). A failed instant whose requested and
inflight files are still on the timeline therefore stays hidden, but once they are gone its files
look committed if nothing earlier is left on the timeline. Hence the rule every rollback here
follows, as Hudi's own rollback does: delete the data files first, the timeline entries last.
Older hudi-rs code (main as of May 2026) did not filter uncommitted files of layout-1 tables at
all: any base file at or before the latest completed instant was read. This writer is correct
under both readers as long as its own instants are rolled back before its next commit; but under
the older reader another worker's *pending* instant, if earlier than a completed one, is visible.

Hudi also writes a `{r}.rollback` instant (Avro-serialised HoodieRollbackMetadata) as an audit
record. hudi-rs ignores rollback instants, and an Avro writer is not a dependency here, so a
rollback removes the failed instant's files, markers and timeline entries and records nothing on
the timeline; `rolled_back` and `orphans_removed` report what was removed.

Local file system only: atomicity rests on rename/link and on fsync of files and directories.
"""
