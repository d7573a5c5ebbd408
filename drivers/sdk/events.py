"""The names of the run history's events: one list, shared by every writer and every reader.

The pipeline's processes, the fault schedule and the harness append these to `history.jsonl`; the
checkers, the timeline and the certification evidence read them. A `StrEnum` member is its own
string, so it is written and compared as one.
"""

from __future__ import annotations

from enum import StrEnum


class Event(StrEnum):
    # the run, written by the harness
    RUN_START = "run.start"
    RUN_DRAINED = "run.drained"
    RUN_DRAIN_TIMEOUT = "run.drain_timeout"
    RUN_CHECKING = "run.checking"
    STABLE_OFFSETS = "kafka.stable_offsets"
    """A sample of a read_committed topic's last stable offset and high watermark per partition
    (`offsets: {partition: [lso, hw]}`): an LSO that stays behind the high watermark is an open
    transaction that every read_committed reader waits behind."""
    # the workload's producer
    WORKLOAD_START = "workload.start"
    WORKLOAD_END = "workload.end"
    WORKLOAD_PRODUCER_FATAL = "workload.producer_fatal"
    """The workload's idempotent producer raised a fatal error (its sequence broken: acknowledged
    writes lost under it) and was replaced by a new one, from `record` on."""
    # the fault schedule
    FAULT_INJECT = "fault.inject"
    FAULT_HEAL = "fault.heal"
    FAULT_ERROR = "fault.error"
    FAULT_SKIPPED = "fault.skipped"
    FAULT_ROLE_RESOLVED = "fault.role_resolved"
    """A fault's role target (a cluster's leader, a Connect commit coordinator) named the process or
    node that played it when the fault fired."""
    # the supervisor, about the pipeline's processes
    PROCESS_START = "process.start"
    PROCESS_EXIT = "process.exit"
    PROCESS_KILL = "process.kill"
    PROCESS_TERMINATE = "process.terminate"
    PROCESS_PAUSE = "process.pause"
    PROCESS_RESUME = "process.resume"
    PROCESS_STOP = "process.stop"
    PROCESS_CRASH_LOOP = "process.crash_loop"
    PIPELINE_READY = "pipeline.ready"
    """Every pipeline process is ready at once (the coordinator listening, each worker restored): the
    moment from which the pipeline consumes. Written once, the first time."""
    # the runtime: a crash point firing, the coordinator and its checkpoints, the workers
    CRASH = "crash"
    COORDINATOR_START = "coordinator.start"
    COORDINATOR_STOP = "coordinator.stop"
    COORDINATOR_WORKER_JOINED = "coordinator.worker_joined"
    COORDINATOR_WORKER_LOST = "coordinator.worker_lost"
    CHECKPOINT_PERSISTED = "checkpoint.persisted"
    CHECKPOINT_COMMITTED = "checkpoint.committed"
    CHECKPOINT_ABANDONED = "checkpoint.abandoned"
    WORKER_RESTORED = "worker.restored"
    WORKER_COORDINATOR_LOST = "worker.coordinator_lost"
    WORKER_STOP = "worker.stop"
    # a black-box engine, as the harness observes it (`chaos.engines`)
    ENGINE_WORKER_READY = "engine.worker_ready"
    """A black-box engine's process serves requests and the connector's tasks run (written by the
    harness on the process's behalf, with its pid)."""
    ENGINE_CONNECTOR_CREATED = "engine.connector_created"
    ENGINE_TASK_FAILED = "engine.task_failed"
    """A black-box engine reports a task failed, with the first line of its trace (once per task and trace)."""
    ENGINE_COMMIT_SEEN = "engine.commit_seen"
    """A new commit in the output (an Iceberg snapshot, say), with what it says of itself."""
    # what the drivers saw: the evidence that a scenario's fault really reached them
    SOURCE_DISCONNECTED = "source.disconnected"
    SOURCE_RECONNECTED = "source.reconnected"
    SINK_WRITE_FAILED = "sink.write_failed"
    DISK_FAULT_HIT = "disk.fault_hit"
    STORAGE_LOST_WRITES = "storage.lost_writes"
    SINK_ROLLBACK = "sink.rollback"
    SCHEMA_CHANGE_SEEN = "schema.change_seen"
    # a seeded-bug variant, the first time its bug changes what the driver does
    MUTANT_ACTIVE = "mutant.active"
