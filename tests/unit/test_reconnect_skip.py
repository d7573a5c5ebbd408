"""The `reconnect-skip` mutant of the Kafka source, without a broker: the error classification, and
what the source does with the partitions after an error, against a stand-in consumer.

The end-to-end proof that no-loss catches it is `experiments/mutants/reconnect-skip.yaml` (run by
the certification suite); these tests pin down the logic that experiment rests on: which
librdkafka errors count as a lost connection, that only the mutant, and only after such an error,
moves its partitions to the end of the log, and that `pipeline.mutant` selects it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import pytest
from confluent_kafka import OFFSET_END, KafkaError, TopicPartition
from pydantic import ValidationError

from chaos.experiment.models import PipelineSpec, WorkloadSpec
from drivers import kafka_source
from drivers.kafka_source import KafkaSource, is_connection_loss
from drivers.mutants import ReconnectSkipKafkaSource
from drivers.runtime.config import JobConfig
from drivers.runtime.factory import create_source
from drivers.sdk.crashpoints import NoCrashes
from drivers.sdk.records import generate

TOPIC = "input"
RECORDS = list(generate(WorkloadSpec(records=40, rate=50, keys=5, payload_size=16), seed=5))


@dataclass
class Message:
    """What `Consumer.consume` hands out: a record, or an error event."""

    partition_: int = 0
    offset_: int = 0
    value_: bytes = b""
    error_: KafkaError | None = None

    def partition(self) -> int:
        return self.partition_

    def offset(self) -> int:
        return self.offset_

    def value(self) -> bytes:
        return self.value_

    def error(self) -> KafkaError | None:
        return self.error_


@dataclass
class FakeConsumer:
    """A consumer that serves queued batches and records every (re)assignment."""

    config: dict[str, Any]
    assigned: list[TopicPartition] = field(default_factory=list)
    assigns: list[list[tuple[int, int]]] = field(default_factory=list)
    batches: list[list[Message]] = field(default_factory=list)

    def assign(self, partitions: list[TopicPartition]) -> None:
        self.assigned = partitions
        self.assigns.append([(tp.partition, tp.offset) for tp in partitions])

    def assignment(self) -> list[TopicPartition]:
        return list(self.assigned)

    def consume(self, num_messages: int, timeout: float) -> list[Message]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


def record(partition: int, offset: int) -> Message:
    return Message(partition, offset, RECORDS[offset % len(RECORDS)].encode())


Build = Callable[[type[KafkaSource]], tuple[KafkaSource, FakeConsumer]]


@pytest.fixture
def source(monkeypatch: pytest.MonkeyPatch) -> Build:
    """Builds a source over a fake consumer (given the source's librdkafka settings), opened on
    partitions 0 and 1 at the checkpoint positions 5 and 7."""
    monkeypatch.setattr(kafka_source, "Consumer", FakeConsumer)

    def build(kind: type[KafkaSource]) -> tuple[KafkaSource, FakeConsumer]:
        s = kind("127.0.0.1:9", TOPIC, "group", 2, NoCrashes(), transactional=True)
        assert isinstance(s.consumer, FakeConsumer)
        s.open(0, 1, {"0": 5, "1": 7})
        return s, s.consumer

    return build


# -- the classification -----------------------------------------------------------------------------
@pytest.mark.parametrize("code", [KafkaError._TRANSPORT, KafkaError._ALL_BROKERS_DOWN])
def test_a_lost_broker_connection_is_a_connection_loss(code: int) -> None:
    assert is_connection_loss(KafkaError(code, "127.0.0.1:9/bootstrap: Connect failed: Connection refused"))


@pytest.mark.parametrize("code", [KafkaError._TIMED_OUT, KafkaError._PARTITION_EOF, KafkaError._MSG_TIMED_OUT,
                                  KafkaError.UNKNOWN_TOPIC_OR_PART, KafkaError.NOT_LEADER_FOR_PARTITION,
                                  KafkaError._FENCED])
def test_other_errors_are_not(code: int) -> None:
    assert not is_connection_loss(KafkaError(code))


def test_a_fatal_error_is_not_a_connection_loss_even_with_a_transport_code() -> None:
    assert not is_connection_loss(KafkaError(KafkaError._TRANSPORT, fatal=True))


# -- what the sources do after an error ---------------------------------------------------------------
def test_both_sources_hear_librdkafkas_error_callback_with_the_same_client_settings(source: Build) -> None:
    """The callback only reports the loss (`source.disconnected`); what differs is the mutant's reset."""
    mutant, mutant_client = source(ReconnectSkipKafkaSource)
    correct, correct_client = source(KafkaSource)
    assert mutant_client.config["error_cb"] == mutant._consumer_error
    assert correct_client.config["error_cb"] == correct._consumer_error
    assert {k: v for k, v in mutant_client.config.items() if k != "error_cb"} == \
        {k: v for k, v in correct_client.config.items() if k != "error_cb"}
    correct_client.config["error_cb"](KafkaError(KafkaError._TRANSPORT, "Connection refused"))
    assert correct.connection_lost
    correct_client.batches = [[record(0, 5), record(1, 7)]]
    assert correct.poll(100, 0.1).num_rows == 2
    assert correct_client.assigns == [[(0, 5), (1, 7)]] and not correct.connection_lost


@pytest.mark.parametrize("via", ["error_cb", "consume"])
def test_after_a_connection_loss_the_mutant_resumes_at_the_end_of_the_log(source: Build, via: str) -> None:
    mutant, fake = source(ReconnectSkipKafkaSource)
    assert isinstance(mutant, ReconnectSkipKafkaSource)
    assert fake.assigns == [[(0, 5), (1, 7)]]
    fake.batches = [[record(0, 5), record(1, 7)]]
    assert mutant.poll(100, 0.1).num_rows == 2
    assert mutant.snapshot_positions() == {"0": 6, "1": 8}

    timeout = KafkaError(KafkaError._TIMED_OUT)
    if via == "error_cb":
        fake.config["error_cb"](timeout)
    else:
        fake.batches = [[Message(error_=timeout)]]
        mutant.poll(100, 0.1)
    mutant.poll(100, 0.1)
    assert len(fake.assigns) == 1, "a timed-out request is not a lost connection"

    lost = KafkaError(KafkaError._TRANSPORT, "Connection refused")
    if via == "error_cb":
        fake.config["error_cb"](lost)
    else:
        fake.batches = [[Message(error_=lost)]]
        mutant.poll(100, 0.1)  # the error arrives inside consume; the reset comes with the next poll
    fake.batches = [[record(0, 40), record(1, 41)]]  # librdkafka resolved OFFSET_END after the outage
    assert mutant.poll(100, 0.1).num_rows == 2
    assert fake.assigns[1:] == [[(0, OFFSET_END), (1, OFFSET_END)]]
    assert mutant.snapshot_positions() == {"0": 41, "1": 42}  # offsets 6..39 and 8..40 skipped
    mutant.poll(100, 0.1)
    assert len(fake.assigns) == 2 and mutant.resets == 1  # once per loss, not on every poll


def test_the_correct_source_carries_on_from_its_position_after_the_same_error(source: Build) -> None:
    correct, fake = source(KafkaSource)
    fake.batches = [[Message(error_=KafkaError(KafkaError._TRANSPORT, "Connection refused"))],
                    [record(0, 5), record(1, 7)]]
    correct.poll(100, 0.1)
    assert correct.poll(100, 0.1).num_rows == 2
    assert fake.assigns == [[(0, 5), (1, 7)]]
    assert correct.snapshot_positions() == {"0": 6, "1": 8}


# -- selection ------------------------------------------------------------------------------------------
def test_the_spec_accepts_the_mutant_on_a_kafka_source_only() -> None:
    spec = PipelineSpec(source="kafka-transactional", sink="parquet-2pc", profile="distributed-durable",
                        mutant="reconnect-skip")
    assert spec.mutant == "reconnect-skip"
    with pytest.raises(ValidationError, match="variant of the kafka or kafka-transactional source"):
        PipelineSpec(source="parquet-batch", sink="parquet-2pc", profile="distributed-durable",
                     mutant="reconnect-skip")


@pytest.mark.parametrize("mutant, kind", [("reconnect-skip", ReconnectSkipKafkaSource), (None, KafkaSource),
                                          ("non-atomic-commit", KafkaSource)])
def test_the_factory_builds_the_mutant_only_when_selected(source: Build, mutant: str | None,
                                                         kind: type[KafkaSource]) -> None:
    config = JobConfig(job_id="job", run_dir="/nonexistent", workers=1, checkpoint_interval=1.0,
                       profile="distributed-durable", worker_coordinator_port=1,
                       source="kafka-transactional", sink="parquet-2pc", mutant=mutant, source_settings={
                           "bootstrap": "127.0.0.1:9", "topic": TOPIC, "group_id": "group", "partitions": 2})
    built = create_source(config, 0, NoCrashes())  # over the fixture's fake consumer: no broker needed
    assert type(built) is kind
