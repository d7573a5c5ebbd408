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

from __future__ import annotations

import json
import os
import re
import shutil
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.parquet as pq

from chaos.workload.records import SCHEMA
from drivers.contracts import CommitError, CommitHandle, CrashHook, Positions
from drivers.diskfaults import check_disk
from drivers.parquet_files import fsync_dir

if TYPE_CHECKING:
    from drivers.diskfaults import DiskFaults

META_COLUMNS = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                "_hoodie_partition_path", "_hoodie_file_name")
RECORD_KEY = "id"
WRITE_TOKEN = "0-0-0"
TABLE_VERSION = 6
TIMELINE_LAYOUT_VERSION = 1
NONPARTITIONED_KEYGEN = "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
HOODIE = ".hoodie"
PARTITION_METAFILE = ".hoodie_partition_metadata"

_INSTANT = re.compile(r"(\d{17})\.(commit|commit\.requested|inflight)")
_ANY_INSTANT = re.compile(r"(\d{14}|\d{17})(?:_\d{14,17})?\..+")


# -- small durable-file helpers ------------------------------------------------------------------

def _write_atomic(directory: Path, name: str, data: bytes, tmp_prefix: str, *, exclusive: bool = False) -> bool:
    """Write `directory/name` all-or-nothing: a hidden temporary file, fsync, then rename (or, when
    `exclusive`, a hard link that fails if the name exists), then fsync of the directory.
    Returns False when `exclusive` and the name already existed."""
    tmp = directory / f"{tmp_prefix}{uuid.uuid4().hex}.tmp"
    with open(tmp, "wb") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    try:
        if exclusive:
            try:
                os.link(tmp, directory / name)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, directory / name)
    finally:
        tmp.unlink(missing_ok=True)
    fsync_dir(directory)
    return True


def _format_instant(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def _parse_instant(instant: str) -> datetime:
    moment = datetime.strptime(instant[:14], "%Y%m%d%H%M%S").replace(tzinfo=timezone.utc)
    return moment + timedelta(milliseconds=int(instant[14:17] or 0))


# -- schemas -------------------------------------------------------------------------------------

_AVRO_PRIMITIVES: list[tuple[Any, Any]] = [
    (pa.types.is_boolean, "boolean"),
    (lambda t: pa.types.is_int8(t) or pa.types.is_int16(t) or pa.types.is_int32(t)
     or pa.types.is_uint8(t) or pa.types.is_uint16(t), "int"),
    (lambda t: pa.types.is_int64(t) or pa.types.is_uint32(t), "long"),
    (pa.types.is_float32, "float"),
    (pa.types.is_float64, "double"),
    (lambda t: pa.types.is_string(t) or pa.types.is_large_string(t), "string"),
    (lambda t: pa.types.is_binary(t) or pa.types.is_large_binary(t), "bytes"),
    (pa.types.is_date32, {"type": "int", "logicalType": "date"}),
]
_PROMOTIONS = {("int", "long"), ("int", "float"), ("int", "double"), ("long", "float"), ("long", "double"),
               ("float", "double"), ("string", "bytes"), ("bytes", "string")}


def _avro_type(dtype: pa.DataType) -> Any:
    for matches, avro in _AVRO_PRIMITIVES:
        if matches(dtype):
            return avro
    if pa.types.is_timestamp(dtype) and dtype.unit in ("ms", "us"):
        return {"type": "long", "logicalType": "timestamp-millis" if dtype.unit == "ms" else "timestamp-micros"}
    raise ValueError(f"no Avro mapping for column type {dtype}")


def avro_fields(schema: pa.Schema) -> list[dict[str, Any]]:
    """Hudi's writer-schema fields for the data columns: every field nullable, default null."""
    return [{"name": f.name, "type": ["null", _avro_type(f.type)], "default": None}
            for f in schema if f.name not in META_COLUMNS]


def avro_schema(fields: list[dict[str, Any]], table_name: str) -> str:
    """The Avro record schema string Hudi stores as `schema` in a commit's extraMetadata."""
    return json.dumps({"type": "record", "name": f"{table_name}_record", "namespace": f"hoodie.{table_name}",
                       "fields": fields}, separators=(",", ":"))


def merge_fields(base: list[dict[str, Any]], new: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Reconcile a table schema with a batch's, as Hudi's schema reconciliation does: columns are
    never dropped (a batch without one writes nulls), new ones are appended, and a column's type
    may only widen along Avro's promotions (int -> long -> float -> double)."""
    def branch(field: dict[str, Any]) -> Any:
        kind = field["type"]
        return next(t for t in kind if t != "null") if isinstance(kind, list) else kind

    merged = [dict(f) for f in base]
    index = {f["name"]: i for i, f in enumerate(merged)}
    for field in new:
        if field["name"] not in index:
            index[field["name"]] = len(merged)
            merged.append(dict(field))
            continue
        old_type, new_type = branch(merged[index[field["name"]]]), branch(field)
        if old_type == new_type or (old_type, new_type) in _PROMOTIONS:
            if old_type != new_type:
                merged[index[field["name"]]] = dict(field)
        elif (new_type, old_type) not in _PROMOTIONS:  # a narrower batch type reads under the wider one
            raise CommitError(f"column {field['name']!r} changes type {old_type} -> {new_type}, "
                              "which Avro cannot promote")
    return merged


def _sanitize_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name) or "table"
    return cleaned if not cleaned[0].isdigit() else f"t_{cleaned}"


# -- the table layout ----------------------------------------------------------------------------

class HudiLayout:
    """Writer-side access to one table's files: properties, timeline, markers, base files."""

    def __init__(self, table_path: Path, table_name: str | None = None, precombine_field: str = "event_time"):
        self.path = Path(table_path)
        self.meta = self.path / HOODIE
        self.table_name = _sanitize_name(table_name or self.path.name)
        self.precombine_field = precombine_field

    # names
    def requested(self, instant: str) -> Path:
        return self.meta / f"{instant}.commit.requested"

    def inflight(self, instant: str) -> Path:
        return self.meta / f"{instant}.inflight"

    def completed(self, instant: str) -> Path:
        return self.meta / f"{instant}.commit"

    def marker_dir(self, instant: str) -> Path:
        return self.meta / ".temp" / instant

    @staticmethod
    def base_file_name(file_id: str, instant: str) -> str:
        return f"{file_id}_{WRITE_TOKEN}_{instant}.parquet"

    @staticmethod
    def staging_name(name: str) -> str:
        """Where a base file is written before its rename: hidden, and not `.parquet`, so no reader lists it."""
        return f".{name}.inprogress"

    # properties
    def properties(self) -> dict[str, str]:
        props: dict[str, str] = {}
        path = self.meta / "hoodie.properties"
        if path.exists():
            for line in path.read_text().splitlines():
                if line and not line.startswith("#") and "=" in line:
                    key, value = line.split("=", 1)
                    props[key.strip()] = value.replace("\\:", ":").replace("\\=", "=")
        return props

    def ensure_table(self, create_schema: str, tmp_prefix: str) -> None:
        """Create `.hoodie/hoodie.properties` once (an exclusive link, so concurrent workers agree)."""
        if not (self.meta / "hoodie.properties").exists():
            for directory in (self.path, self.meta, self.meta / ".temp", self.meta / ".aux", self.meta / "archived"):
                directory.mkdir(parents=True, exist_ok=True)
            props = {
                "hoodie.table.name": self.table_name,
                "hoodie.table.type": "COPY_ON_WRITE",
                "hoodie.table.version": str(TABLE_VERSION),
                "hoodie.timeline.layout.version": str(TIMELINE_LAYOUT_VERSION),
                "hoodie.table.recordkey.fields": RECORD_KEY,
                "hoodie.table.precombine.field": self.precombine_field,
                "hoodie.table.keygenerator.class": NONPARTITIONED_KEYGEN,
                "hoodie.table.partition.fields": "",
                "hoodie.table.base.file.format": "PARQUET",
                "hoodie.populate.meta.fields": "true",
                "hoodie.datasource.write.hive_style_partitioning": "false",
                "hoodie.datasource.write.partitionpath.urlencode": "false",
                "hoodie.datasource.write.drop.partition.columns": "false",
                "hoodie.table.timeline.timezone": "UTC",
                "hoodie.table.metadata.partitions": "",
                "hoodie.table.create.schema": create_schema,
                # Java's HoodieTableConfig.generateChecksum: CRC32 of "<database>.<table>".
                "hoodie.table.checksum": str(zlib.crc32(f".{self.table_name}".encode())),
            }
            text = "#Properties saved by chaos drivers/hudi.py\n" + "".join(f"{k}={v}\n" for k, v in props.items())
            _write_atomic(self.meta, "hoodie.properties", text.encode(), tmp_prefix, exclusive=True)
        self.check_table()
        if not (self.path / PARTITION_METAFILE).exists():
            _write_atomic(self.path, PARTITION_METAFILE, b"#partition metadata\npartitionDepth=0\n",
                          tmp_prefix, exclusive=True)

    def check_table(self) -> None:
        props = self.properties()
        expected = {"hoodie.table.type": "COPY_ON_WRITE", "hoodie.table.version": str(TABLE_VERSION),
                    "hoodie.timeline.layout.version": str(TIMELINE_LAYOUT_VERSION),
                    "hoodie.table.recordkey.fields": RECORD_KEY}
        wrong = {k: props.get(k) for k, v in expected.items() if props.get(k) != v}
        if wrong:
            raise CommitError(f"{self.path} is not a table this sink can write: {wrong}")
        self.table_name = props.get("hoodie.table.name", self.table_name)

    # timeline
    def timeline_names(self) -> list[str]:
        return sorted(p.name for p in self.meta.iterdir()) if self.meta.is_dir() else []

    def instants(self) -> dict[str, set[str]]:
        """Commit instants on the timeline: time -> the states present (commit, commit.requested, inflight)."""
        found: dict[str, set[str]] = {}
        for name in self.timeline_names():
            m = _INSTANT.fullmatch(name)
            if m:
                found.setdefault(m.group(1), set()).add(m.group(2))
        return found

    def completed_instants(self) -> list[str]:
        return sorted(t for t, states in self.instants().items() if "commit" in states)

    def latest_instant_time(self) -> str | None:
        times = [m.group(1) for m in map(_ANY_INSTANT.fullmatch, self.timeline_names()) if m]
        return max(times, key=lambda t: t.ljust(17, "0")) if times else None

    def read_metadata(self, path: Path) -> dict[str, Any]:
        try:
            text = path.read_text()
        except FileNotFoundError:
            return {}
        return json.loads(text) if text.strip() else {}

    def latest_schema_fields(self) -> list[dict[str, Any]]:
        """The fields of the latest completed commit's schema (what hudi-rs reads under), or none."""
        for instant in reversed(self.completed_instants()):
            schema = self.read_metadata(self.completed(instant)).get("extraMetadata", {}).get("schema")
            if schema:
                return list(json.loads(schema)["fields"])
        return []

    def owner(self, instant: str) -> tuple[str | None, int | None]:
        """The (job id, worker) tags an instant's requested (or inflight) metadata carries."""
        for path in (self.requested(instant), self.inflight(instant), self.completed(instant)):
            try:
                extra = self.read_metadata(path).get("extraMetadata") or {}
            except (ValueError, OSError):
                continue
            if "chaos.job-id" in extra:
                return extra["chaos.job-id"], int(extra["chaos.worker"])
        return None, None

    def new_instant(self, metadata: dict[str, Any], tmp_prefix: str) -> str:
        """A fresh instant time, later than every instant on the timeline, claimed by creating its
        `.commit.requested` exclusively (a concurrent worker that picked the same time moves on)."""
        self.meta.mkdir(parents=True, exist_ok=True)
        data = json.dumps(metadata).encode()
        while True:
            moment = datetime.now(timezone.utc)
            latest = self.latest_instant_time()
            if latest is not None and _format_instant(moment) <= latest.ljust(17, "0"):
                moment = _parse_instant(latest.ljust(17, "0")) + timedelta(milliseconds=1)
            instant = _format_instant(moment)
            if _write_atomic(self.meta, self.requested(instant).name, data, tmp_prefix, exclusive=True):
                return instant


def commit_metadata(write_stats: list[dict[str, Any]], extra: dict[str, str]) -> dict[str, Any]:
    """HoodieCommitMetadata as Hudi's Java writer serialises it for a v6 commit (JSON)."""
    return {"partitionToWriteStats": {"": write_stats} if write_stats else {},
            "compacted": False, "extraMetadata": extra, "operationType": "INSERT"}


# -- the sink ------------------------------------------------------------------------------------

class HudiTwoPhaseSink:
    """Two-phase inserts into a copy-on-write Hudi table; every prepare adds new file groups.

    `max_file_rows` splits one checkpoint into several base files (file groups), so a crash can
    land between them (`sink.write.mid`). Buffered rows are kept until a prepare succeeds: a prepare
    that fails half-way leaves a pending instant that the next prepare (or `recover`) rolls back,
    and the rows go into a fresh instant, so a retried write neither duplicates nor loses.

    Disk faults (`disk`) strike the data path of `prepare`: each marker and base file (write, fsync,
    rename) and the directory fsyncs around them. The instant is pending by then, so whatever a
    failure leaves behind stays hidden from readers until a rollback removes it.
    """

    SINK = "hudi-2pc"

    def __init__(self, table_path: Path, job_id: str, worker: int, crash: CrashHook, *,
                 table_name: str | None = None, precombine_field: str = "event_time",
                 max_file_rows: int = 1_000_000, disk: DiskFaults | None = None):
        self.layout = HudiLayout(Path(table_path), table_name, precombine_field)
        self.job_id = job_id
        self.worker = worker
        self.crash = crash
        self.max_file_rows = max_file_rows
        self.disk = disk
        """Disk-fault injection (drivers/diskfaults.py); None (the default) means no checks."""
        self.orphans_removed = 0
        """Pending instants of this job and worker that the last `recover` rolled back."""
        self.rolled_back: list[str] = []
        """Every instant this sink instance rolled back (failed, aborted or orphaned)."""
        self._buffer: list[pa.Table] = []
        self._owned: dict[str, CommitHandle] = {}
        """Prepared, not yet committed or aborted: these instants must never be rolled back."""

    @property
    def table_path(self) -> Path:
        return self.layout.path

    def _tag(self) -> dict[str, str]:
        return {"chaos.job-id": self.job_id, "chaos.worker": str(self.worker)}

    def _tmp_prefix(self) -> str:
        return f".chaos-{self.job_id}-w{self.worker}-"

    @property
    def _who(self) -> str:
        """This sink's process name, as a disk fault targets it."""
        return f"worker-{self.worker}"

    def _disk_check(self, op: str, path: Path) -> None:
        """A disk-fault check right before a file operation on the data path (no-op without `disk`)."""
        check_disk(self.disk, self._who, op, path)

    # -- writing -------------------------------------------------------------------------------
    def write(self, records: pa.Table) -> None:
        """Buffer in memory: nothing reaches the table before `prepare`."""
        if records.num_rows:
            if RECORD_KEY not in records.column_names:
                raise ValueError(f"records need the record key column {RECORD_KEY!r}")
            self._buffer.append(records)

    def prepare(self, checkpoint_id: int) -> CommitHandle:
        """Roll back this worker's failed instants, then write a new instant's base files, invisible."""
        self.crash.hit("sink.prepare.before")
        handle = CommitHandle(sink=self.SINK, job_id=self.job_id, checkpoint_id=checkpoint_id,
                              worker=self.worker, payload={"instant": None, "files": [], "write_stats": []})
        if not self._buffer:
            if self.layout.meta.is_dir():
                self._rollback_failed_instants(keep=set(self._owned))
            self.crash.hit("sink.prepare.after")
            return handle
        data = pa.concat_tables(self._buffer, promote_options="permissive")
        fields = merge_fields(self.layout.latest_schema_fields(), avro_fields(data.schema))
        self.layout.ensure_table(avro_schema(fields, self.layout.table_name), self._tmp_prefix())
        schema = avro_schema(fields, self.layout.table_name)
        self._rollback_failed_instants(keep=set(self._owned))

        extra = {**self._tag(), "chaos.checkpoint-id": str(checkpoint_id)}
        instant = self.layout.new_instant(commit_metadata([], extra), self._tmp_prefix())
        chunks = [data.slice(i, self.max_file_rows) for i in range(0, data.num_rows, self.max_file_rows)]
        planned = [self.layout.base_file_name(f"{uuid.uuid4()}-0", instant) for _ in chunks]
        stats = [{"fileId": name.split("_")[0], "path": name, "prevCommit": "null", "partitionPath": "",
                  "numWrites": chunk.num_rows, "numInserts": chunk.num_rows, "numDeletes": 0,
                  "numUpdateWrites": 0, "totalWriteErrors": 0} for name, chunk in zip(planned, chunks)]
        _write_atomic(self.layout.meta, self.layout.inflight(instant).name,
                      json.dumps(commit_metadata(stats, {**extra, "schema": schema})).encode(), self._tmp_prefix())
        markers = self.layout.marker_dir(instant)
        markers.mkdir(parents=True, exist_ok=True)
        fsync_dir(markers.parent, disk=self.disk, who=self._who)
        for n, (name, chunk, stat) in enumerate(zip(planned, chunks, stats)):
            stat["fileSizeInBytes"] = stat["totalWriteBytes"] = self._write_base_file(instant, n, name, chunk)
            if n + 1 == max(1, len(chunks) // 2):
                self.crash.hit("sink.write.mid")
        self._buffer = []
        handle = handle.model_copy(update={"payload": {
            "instant": instant, "files": planned, "write_stats": stats, "schema": schema}})
        self._owned[instant] = handle
        self.crash.hit("sink.prepare.after")
        return handle

    def _write_base_file(self, instant: str, file_index: int, name: str, chunk: pa.Table) -> int:
        """Marker first (so a rollback finds the file), then a hidden staged file, fsync, rename."""
        markers = self.layout.marker_dir(instant)
        marker = markers / f"{name}.marker.CREATE"
        with open(marker, "wb") as f:
            self._disk_check("fsync", marker)  # disk-fault injection point
            os.fsync(f.fileno())
        fsync_dir(markers, disk=self.disk, who=self._who)
        keys = pa.array([str(v) for v in chunk.column(RECORD_KEY).to_pylist()], pa.string())
        n = chunk.num_rows
        meta = {
            "_hoodie_commit_time": pa.array([instant] * n, pa.string()),
            "_hoodie_commit_seqno": pa.array([f"{instant}_{file_index}_{i}" for i in range(n)], pa.string()),
            "_hoodie_record_key": keys,
            "_hoodie_partition_path": pa.array([""] * n, pa.string()),
            "_hoodie_file_name": pa.array([name] * n, pa.string()),
        }
        table = pa.table({**meta, **{c: chunk.column(c) for c in chunk.column_names if c not in META_COLUMNS}})
        sorted_keys = sorted(keys.to_pylist())
        table = table.replace_schema_metadata({
            "hoodie_min_record_key": sorted_keys[0], "hoodie_max_record_key": sorted_keys[-1]})
        staged = self.layout.path / self.layout.staging_name(name)
        with open(staged, "wb") as f:
            self._disk_check("write", staged)  # disk-fault injection point
            pq.write_table(table, f)
            f.flush()
            self._disk_check("fsync", staged)  # disk-fault injection point
            os.fsync(f.fileno())
        self._disk_check("rename", self.layout.path / name)  # disk-fault injection point
        os.replace(staged, self.layout.path / name)
        fsync_dir(self.layout.path, disk=self.disk, who=self._who)
        return (self.layout.path / name).stat().st_size

    # -- committing ----------------------------------------------------------------------------
    def commit(self, handle: CommitHandle) -> None:
        """Complete the instant: `{instant}.commit` is written atomically, once. Safe to repeat."""
        if handle.sink != self.SINK:
            raise ValueError(f"not a {self.SINK} handle: {handle.sink}")
        instant = handle.payload.get("instant")
        if instant is None:
            return
        if self.layout.completed(instant).exists():
            self._cleanup_completed(instant)
            self._owned.pop(instant, None)
            return
        self.crash.hit("sink.commit.before")
        if not (self.layout.inflight(instant).exists() or self.layout.requested(instant).exists()):
            raise CommitError(f"instant {instant} (checkpoint {handle.checkpoint_id}) is neither completed nor "
                              "pending: it was rolled back, and its prepared data is lost")
        missing = [name for name in handle.payload.get("files", []) if not (self.layout.path / name).exists()]
        if missing:
            raise CommitError(f"instant {instant}: base files {missing} are missing; refusing to commit "
                              "a partial instant")
        self.layout.check_table()
        fields = merge_fields(self.layout.latest_schema_fields(), json.loads(handle.payload["schema"])["fields"])
        extra = {"chaos.job-id": handle.job_id, "chaos.worker": str(handle.worker),
                 "chaos.checkpoint-id": str(handle.checkpoint_id),
                 "schema": avro_schema(fields, self.layout.table_name)}
        metadata = commit_metadata(list(handle.payload.get("write_stats", [])), extra)
        _write_atomic(self.layout.meta, self.layout.completed(instant).name, json.dumps(metadata).encode(),
                      self._tmp_prefix(), exclusive=True)
        self._cleanup_completed(instant)
        self._owned.pop(instant, None)
        self.crash.hit("sink.commit.after")

    def _cleanup_completed(self, instant: str) -> None:
        """After completion: markers, then the inflight and requested files (Hudi keeps these; the
        completed file supersedes them, and readers only look at completed instants)."""
        shutil.rmtree(self.layout.marker_dir(instant), ignore_errors=True)
        removed = False
        for path in (self.layout.inflight(instant), self.layout.requested(instant)):
            if path.exists():
                path.unlink(missing_ok=True)
                removed = True
        if removed:
            fsync_dir(self.layout.meta)

    def abort(self, handle: CommitHandle) -> None:
        instant = handle.payload.get("instant")
        if instant is None:
            return
        if self.layout.completed(instant).exists():
            raise CommitError(f"instant {instant} (checkpoint {handle.checkpoint_id}) is committed "
                              "and cannot be aborted")
        self._rollback(instant)
        self._owned.pop(instant, None)

    # -- rollback ------------------------------------------------------------------------------
    def _pending_instants_of_mine(self) -> list[str]:
        mine = []
        for instant, states in sorted(self.layout.instants().items()):
            if "commit" in states:
                continue
            if self.layout.owner(instant) == (self.job_id, self.worker):
                mine.append(instant)
        return mine

    def _rollback_failed_instants(self, keep: set[str]) -> list[str]:
        """Roll back every pending instant of this job and worker except `keep`, newest first (as
        Hudi rolls back failed writes). Completed instants' leftovers are only tidied up."""
        for instant, states in self.layout.instants().items():
            if "commit" in states and states != {"commit"} and instant not in keep \
                    and self.layout.owner(instant) == (self.job_id, self.worker):
                self._cleanup_completed(instant)
        failed = [t for t in self._pending_instants_of_mine() if t not in keep]
        for instant in sorted(failed, reverse=True):
            self._rollback(instant)
        return failed

    def _instant_files(self, instant: str) -> set[str]:
        """Every base file an instant may have created: its markers, its planned write stats, and
        any base or staged file carrying its instant time."""
        names: set[str] = set()
        markers = self.layout.marker_dir(instant)
        if markers.is_dir():
            names |= {p.name[: -len(".marker.CREATE")] for p in markers.iterdir()
                      if p.name.endswith(".marker.CREATE")}
        stats = self.layout.read_metadata(self.layout.inflight(instant)).get("partitionToWriteStats", {})
        names |= {s["path"] for group in stats.values() for s in group if s.get("path")}
        suffix = f"_{instant}.parquet"
        if self.layout.path.is_dir():
            for p in self.layout.path.iterdir():
                if p.name.endswith(suffix) or p.name.endswith(f"{suffix}.inprogress"):
                    names.add(p.name.lstrip(".").removesuffix(".inprogress"))
        return names

    def _rollback(self, instant: str) -> None:
        """Undo a pending instant: data files first, then markers, then inflight, then requested.

        The order matters to every reader: while the instant is on the timeline its files are
        hidden, but a base file whose instant has left the timeline looks committed to hudi-rs
        once it is older than the first instant left (see the module docstring).
        """
        if self.layout.completed(instant).exists():
            raise CommitError(f"instant {instant} is completed and cannot be rolled back")
        self._delete_data_files(instant)
        shutil.rmtree(self.layout.marker_dir(instant), ignore_errors=True)
        self._delete_timeline_entries(instant)
        self.rolled_back.append(instant)

    def _delete_data_files(self, instant: str) -> None:
        files = self._instant_files(instant)
        for name in files:
            (self.layout.path / name).unlink(missing_ok=True)
            (self.layout.path / self.layout.staging_name(name)).unlink(missing_ok=True)
        if files:
            fsync_dir(self.layout.path)

    def _delete_timeline_entries(self, instant: str) -> None:
        for path in (self.layout.inflight(instant), self.layout.requested(instant)):
            path.unlink(missing_ok=True)
            fsync_dir(self.layout.meta)

    def recover(self, committed: list[CommitHandle]) -> None:
        """Roll back this job+worker's pending instants that `committed` does not list, then commit
        the ones it does (idempotently). Rolling back first means no reader ever sees the table
        completed while an orphan of ours is still waiting to be removed."""
        self._buffer = []
        self._owned = {}
        mine = [h for h in committed if h.sink == self.SINK]
        keep = {h.payload["instant"] for h in mine if h.payload.get("instant")}
        removed = 0
        if self.layout.meta.is_dir():
            removed = len(self._rollback_failed_instants(keep=keep))
            pattern = re.compile(re.escape(self._tmp_prefix()) + r"[0-9a-f]{32}\.tmp")
            for directory in (self.layout.meta, self.layout.path):
                for path in directory.iterdir():
                    if pattern.fullmatch(path.name):
                        path.unlink(missing_ok=True)
        for handle in mine:
            self.commit(handle)
        self.orphans_removed = removed

    def close(self) -> None:
        """Unprepared rows are dropped: only prepare + commit makes data durable and visible."""
        self._buffer = []


# -- the source ----------------------------------------------------------------------------------

class HudiBatchSource:
    """A bounded, replayable source over one snapshot of a Hudi table, read through hudi-rs.

    `open` pins the latest completed instant (or the one in `start`) and lists that snapshot's
    file slices through hudi-rs, sorted by file id; this worker takes the slices whose index is
    `worker` modulo `workers`. A position is the number of rows already handed out of each owned
    slice. A copy-on-write file slice at a fixed instant is immutable, so re-reading from a
    position yields the same rows: `ack` has nothing to commit upstream.
    """

    def __init__(self, table_path: Path, crash: CrashHook):
        self.table_path = Path(table_path)
        self.crash = crash
        self.instant: str | None = None
        self._slices: list[Any] = []
        self._offsets: dict[str, int] = {}
        self._counts: dict[str, int] = {}
        self._loaded: tuple[str, pa.Table] | None = None
        self._reader: Any = None

    def open(self, worker: int, workers: int, start: Positions | None) -> None:
        import hudi

        if not 0 <= worker < workers:
            raise ValueError(f"worker {worker} is not in 0..{workers - 1}")
        self.close()
        table = hudi.HudiTableBuilder.from_base_uri(str(self.table_path)).build()
        completed = [i.timestamp for i in table.get_timeline().get_completed_commits()]
        if start and "instant" in start:
            self.instant = start["instant"]  # a restore reads the very snapshot it started on
        else:
            self.instant = max(completed) if completed else None
        start = start or {}
        self._slices, self._offsets, self._counts = [], {}, {}
        if self.instant is None:
            return
        if self.instant not in completed:
            raise ValueError(f"instant {self.instant} is not a completed commit of {self.table_path}")
        options = hudi.HudiReadOptions().with_as_of_timestamp(self.instant)
        slices = sorted(table.get_file_slices(options), key=lambda s: (s.partition_path, s.file_id))
        self._slices = [s for i, s in enumerate(slices) if i % workers == worker]
        self._reader = table.create_file_group_reader_with_options(options)
        offsets = start.get("splits", {})
        for s in self._slices:
            position = int(offsets.get(s.file_id, 0))
            if position < 0:
                raise ValueError(f"negative position {position} for file group {s.file_id}")
            self._offsets[s.file_id] = position

    def _rows(self, file_slice: Any) -> pa.Table:
        if self._loaded is None or self._loaded[0] != file_slice.file_id:
            batch = self._reader.read_file_slice(file_slice)
            data = pa.Table.from_batches([batch]).drop_columns(
                [c for c in batch.schema.names if c in META_COLUMNS])
            self._loaded = (file_slice.file_id, data)
        return self._loaded[1]

    def _current(self) -> Any | None:
        """The first owned slice (in file-id order) with rows left; each slice is read at most once
        per pass, and a finished one is remembered by its row count."""
        for s in self._slices:
            count = self._counts.get(s.file_id)
            if count is None:
                count = self._counts[s.file_id] = self._rows(s).num_rows
            if self._offsets[s.file_id] < count:
                return s
        return None

    def poll(self, max_records: int, timeout: float) -> pa.Table:
        """Up to `max_records` rows of the first owned slice with rows left; never waits."""
        file_slice = self._current()
        if file_slice is None:
            return SCHEMA.empty_table()
        rows = self._rows(file_slice)
        offset = self._offsets[file_slice.file_id]
        batch = rows.slice(offset, max(1, max_records))
        self._offsets[file_slice.file_id] = offset + batch.num_rows
        self.crash.hit("source.poll.after")
        return batch

    def snapshot_positions(self) -> Positions:
        return {"instant": self.instant, "splits": dict(self._offsets)}

    def ack(self, positions: Positions) -> None:
        """Nothing to commit upstream: the checkpoint that holds `positions` is the commit."""
        self.crash.hit("source.ack.before")

    def exhausted(self) -> bool:
        return self._current() is None

    def close(self) -> None:
        self._loaded = None
        self._reader = None
