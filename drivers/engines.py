"""The engines a pipeline can run on, and the connectors a black-box engine can run: data only.

`native` is our runtime (`drivers.runtime`). `kafka-connect` runs real Kafka Connect workers in
distributed mode with a connector from Maven Central. `command` runs the user's own pipeline: the
processes their experiment names by argv, with the testbed's addresses filled in (`PLACEHOLDERS`).

A black-box connector implements one of the matrix's rows, named here by the source kind whose
input it reads and the sink kind whose output format it writes: the harness prepares the input and reads the output through those kinds' sides,
exactly as for our own connectors. It has no crash points and no mutants; its scenarios are driven
by process and link faults.
"""

from __future__ import annotations

from dataclasses import dataclass

NATIVE = "native"
KAFKA_CONNECT = "kafka-connect"
COMMAND = "command"
ENGINES = (NATIVE, KAFKA_CONNECT, COMMAND)

COMMAND_SOURCES = ("kafka", "kafka-transactional")
"""The sources a `command` pipeline may read: the harness follows its progress by the offsets it
commits to its consumer group."""
PLACEHOLDERS = {
    "kafka": "the Kafka bootstrap address, through the `worker-kafka` link",
    "topic": "the input topic",
    "group": "the consumer group the pipeline commits its progress to (the harness drains by its offsets)",
    "partitions": "the input topic's partition count",
    "run_dir": "the run's directory",
    "python": "the Python interpreter running the testbed",
    "index": "the command's position in `commands` (0, 1, ...)",
    "sink": "`{sink.KEY}`: a setting of the sink kind's output, e.g. `{sink.output_dir}` for parquet",
}
"""What a `command` argv or environment value may name in braces; `{{` and `}}` stand for braces."""


@dataclass(frozen=True)
class Artifact:
    """A pinned Maven Central artifact."""

    group: str
    artifact: str
    version: str


@dataclass(frozen=True)
class EngineConnector:
    name: str
    engine: str
    title: str
    version: str
    connector_class: str
    artifacts: tuple[Artifact, ...]
    """The plug-in: these and their runtime dependencies."""
    sources: tuple[str, ...]
    """The source kinds whose input it reads."""
    sink: str
    """The sink kind whose output it writes, read back through that kind's harness side."""
    links: tuple[str, ...]
    """The testbed's links its processes use."""
    roles: tuple[str, ...] = ()
    """Process roles faults may target (`faults.targets.ROLES`), resolved when the fault fires."""


ICEBERG_VERSION = "1.10.1"
HADOOP_VERSION = "3.4.1"
"""Iceberg's Parquet writer and HadoopFileIO need Hadoop's Configuration and FileSystem: the shaded
client jars carry them without Hadoop's own dependency tree."""
POSTGRES_JDBC_VERSION = "42.7.8"

ENGINE_CONNECTORS = {c.name: c for c in (
    EngineConnector(
        "iceberg-sink", KAFKA_CONNECT, "Apache Iceberg sink for Kafka Connect", ICEBERG_VERSION,
        "org.apache.iceberg.connect.IcebergSinkConnector",
        (Artifact("org.apache.iceberg", "iceberg-kafka-connect", ICEBERG_VERSION),
         Artifact("org.apache.iceberg", "iceberg-data", ICEBERG_VERSION),
         Artifact("org.apache.iceberg", "iceberg-parquet", ICEBERG_VERSION),
         Artifact("org.postgresql", "postgresql", POSTGRES_JDBC_VERSION),
         Artifact("org.apache.hadoop", "hadoop-client-api", HADOOP_VERSION),
         Artifact("org.apache.hadoop", "hadoop-client-runtime", HADOOP_VERSION)),
        sources=("kafka", "kafka-transactional"), sink="iceberg-2pc", links=("worker-kafka", "worker-catalog"),
        roles=("connect-coordinator",)),
)}
