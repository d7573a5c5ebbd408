"""A version-6 Hudi table's layout on the local file system: its timeline, instants, schemas and
base files, as Hudi's Java writer lays them out."""

from __future__ import annotations

import json
import os
import re
import uuid
import zlib
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pyarrow as pa

from drivers.parquet_files import fsync_dir
from drivers.sdk.contracts import CommitError

META_COLUMNS = ("_hoodie_commit_time", "_hoodie_commit_seqno", "_hoodie_record_key",
                "_hoodie_partition_path", "_hoodie_file_name")
RECORD_KEY = "id"
WRITE_TOKEN = "0-0-0"
TABLE_VERSION = 6
TIMELINE_LAYOUT_VERSION = 1
NONPARTITIONED_KEYGEN = "org.apache.hudi.keygen.NonpartitionedKeyGenerator"
HOODIE = ".hoodie"
PARTITION_METAFILE = ".hoodie_partition_metadata"

INSTANT = re.compile(r"(\d{17})\.(commit|commit\.requested|inflight)")
ANY_INSTANT = re.compile(r"(\d{14}|\d{17})(?:_\d{14,17})?\..+")


# -- small durable-file helpers ------------------------------------------------------------------

def write_atomic(directory: Path, name: str, data: bytes, tmp_prefix: str, *, exclusive: bool = False) -> bool:
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


def format_instant(moment: datetime) -> str:
    return moment.strftime("%Y%m%d%H%M%S") + f"{moment.microsecond // 1000:03d}"


def parse_instant(instant: str) -> datetime:
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


def sanitize_name(name: str) -> str:
    cleaned = re.sub(r"[^A-Za-z0-9_]", "_", name) or "table"
    return cleaned if not cleaned[0].isdigit() else f"t_{cleaned}"


# -- the table layout ----------------------------------------------------------------------------

class HudiLayout:
    """Writer-side access to one table's files: properties, timeline, markers, base files."""

    def __init__(self, table_path: Path, table_name: str | None = None, precombine_field: str = "event_time"):
        self.path = Path(table_path)
        self.meta = self.path / HOODIE
        self.table_name = sanitize_name(table_name or self.path.name)
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
            write_atomic(self.meta, "hoodie.properties", text.encode(), tmp_prefix, exclusive=True)
        self.check_table()
        if not (self.path / PARTITION_METAFILE).exists():
            write_atomic(self.path, PARTITION_METAFILE, b"#partition metadata\npartitionDepth=0\n",
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
            m = INSTANT.fullmatch(name)
            if m:
                found.setdefault(m.group(1), set()).add(m.group(2))
        return found

    def completed_instants(self) -> list[str]:
        return sorted(t for t, states in self.instants().items() if "commit" in states)

    def latest_instant_time(self) -> str | None:
        times = [m.group(1) for m in map(ANY_INSTANT.fullmatch, self.timeline_names()) if m]
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
            if latest is not None and format_instant(moment) <= latest.ljust(17, "0"):
                moment = parse_instant(latest.ljust(17, "0")) + timedelta(milliseconds=1)
            instant = format_instant(moment)
            if write_atomic(self.meta, self.requested(instant).name, data, tmp_prefix, exclusive=True):
                return instant


def commit_metadata(write_stats: list[dict[str, Any]], extra: dict[str, str]) -> dict[str, Any]:
    """HoodieCommitMetadata as Hudi's Java writer serialises it for a v6 commit (JSON)."""
    return {"partitionToWriteStats": {"": write_stats} if write_stats else {},
            "compacted": False, "extraMetadata": extra, "operationType": "INSERT"}
