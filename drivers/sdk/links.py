"""The testbed's named network links, through Toxiproxy, that a connector's processes may use.

A connector kind lists the ones it uses (`Connector.links`), so that an experiment's faults can
target them and the topology creates them. The names are the SDK's, so that a plug-in can name a
link without importing the harness.
"""

from __future__ import annotations

KAFKA_LINKS = ("workload-kafka", "worker-kafka", "sink-kafka")
"""Links to Kafka, each with a broker listener of its own: the workload's producer, the pipeline's
workers reading their source, and a Kafka sink's producer (so that its writes can fail while the
source reads on)."""

RUNTIME_LINKS = ("worker-coordinator", "coordinator-store", "worker-catalog", "worker-postgres")
"""Links the runner creates per run: workers to the coordinator; the coordinator to its PostgreSQL
checkpoint store (distributed-durable); workers to the Iceberg SQL catalog in that PostgreSQL; and
workers to that PostgreSQL for a connector whose data lives there (a database source or sink)."""

NETWORK_LINKS = KAFKA_LINKS + RUNTIME_LINKS
"""Every named link that a network fault may target."""

CONNECTOR_LINKS = ("workload-kafka", "worker-kafka", "sink-kafka", "worker-catalog", "worker-postgres")
"""The links a connector kind may declare as its own."""
