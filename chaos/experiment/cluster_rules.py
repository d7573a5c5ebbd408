"""What an experiment may ask of a cluster, checked where it is written.

A cluster's nodes, controllers, links and roles exist only in a cluster of the right form: one
broker has a single `kafka`, combined nodes have no controller processes (nor the links to them).
The roles are roles of the Kafka input's cluster, and `txn-coordinator` of the Kafka sink's. An
unclean election is opted into. Called by `Experiment`'s validator, so every problem names its field.
"""

from __future__ import annotations

from typing import Any

from faults.catalog import ClusterFault, ElectFault, IsolateFault
from faults.cluster import QUORUM_KINDS
from faults.targets import (
    COMBINED_PAIR_LINKS,
    CONTROLLERS,
    NODES,
    PAIR_LINKS,
    cluster_role,
    links_between,
    side_of_split,
)

KAFKA_SOURCES = ("kafka", "kafka-transactional")


def check_cluster(experiment: Any) -> None:
    """Raise ValueError naming the field of the first thing the experiment's environment cannot offer."""
    kafka = experiment.environment.kafka
    cluster, separate = kafka.brokers > 1, kafka.controllers == "separate"
    for index, fault in enumerate(experiment.faults):
        _check_fault(experiment, index, fault, cluster, separate)
    if not cluster and kafka.min_insync_replicas is not None:
        raise ValueError("environment.kafka.min_insync_replicas: a topic's in-sync replicas are a cluster's: "
                         "set environment.kafka.brokers: 3")
    if not cluster and separate:
        raise ValueError("environment.kafka.controllers: separate controllers are a cluster's: set "
                         "environment.kafka.brokers: 3")
    if cluster and experiment.pipeline.engine == "kafka-connect":
        raise ValueError("environment.kafka.brokers: Kafka Connect runs on one broker for now")
    if experiment.environment.backend == "docker":
        _check_docker(experiment, cluster)


def _check_docker(experiment: Any, cluster: bool) -> None:
    """What the Docker backend does not run yet: a cluster, Connect, a broker on the clock shim."""
    if cluster:
        raise ValueError("environment.backend: the Docker backend runs one broker for now: set "
                         "environment.kafka.brokers: 1, or backend: native")
    if experiment.pipeline.engine == "kafka-connect":
        raise ValueError("environment.backend: Kafka Connect runs on the native backend only for now")
    for index, fault in enumerate(experiment.faults):
        if fault.kind == "clock" and fault.target == "kafka":
            raise ValueError(f"faults[{index}].target: the Docker backend's broker runs without the clock shim "
                             "(built for this machine's C library, not the image's): use backend: native")


def _check_fault(experiment: Any, index: int, fault: Any, cluster: bool, separate: bool) -> None:
    target = getattr(fault, "target", None) or ""
    parts = target.split(",")
    if not cluster and isinstance(fault, ClusterFault):
        raise ValueError(f"faults[{index}].kind: {fault.kind} is a fault of a three-broker cluster: set "
                         "environment.kafka.brokers: 3")
    if not cluster and any(p in NODES + CONTROLLERS or p in PAIR_LINKS or cluster_role(p) for p in parts):
        raise ValueError(f"faults[{index}].target: {target} is part of a three-broker cluster: set "
                         "environment.kafka.brokers: 3")
    if cluster and target == "kafka":
        raise ValueError(f"faults[{index}].target: the cluster has no single `kafka` to stop: name a node "
                         f"({', '.join(NODES)})")
    if cluster and not separate and any(p in CONTROLLERS or (p in PAIR_LINKS and p not in COMBINED_PAIR_LINKS)
                                        for p in parts):
        raise ValueError(f"faults[{index}].target: {target} is part of a cluster whose controllers run apart: set "
                         "environment.kafka.controllers: separate")
    roles = [p for p in parts if cluster_role(p)]
    if roles and experiment.pipeline.source not in KAFKA_SOURCES:
        raise ValueError(f"faults[{index}].target: {target} is a role of the Kafka input's cluster: the "
                         f"pipeline's source must be Kafka (got {experiment.pipeline.source})")
    if "txn-coordinator" in roles and experiment.pipeline.sink != "kafka-transactional":
        raise ValueError(f"faults[{index}].target: txn-coordinator is the coordinator of the Kafka sink's "
                         f"transactions: the pipeline's sink must be Kafka (got {experiment.pipeline.sink})")
    if isinstance(fault, IsolateFault) and cluster and not roles:
        side = set(side_of_split(target))
        if not links_between(side, fault.direction, QUORUM_KINDS[fault.links], separate):
            raise ValueError(f"faults[{index}].target: no link of the kind asked joins {target} to the rest of the "
                             "cluster (it is the whole cluster, or the other side has none of those links)")
    if isinstance(fault, ElectFault) and fault.election == "unclean" and experiment.expect.no_loss is not False:
        raise ValueError(f"faults[{index}].election: an unclean election may lose acknowledged writes; "
                         "opt in with expect.no_loss: false (the loss is then reported as expected)")
