"""The engines a pipeline can run on (`pipeline.engine`): one table entry each."""

from __future__ import annotations

from chaos.engines.base import Engine
from chaos.sides.base import RunContext, SinkSide, SourceSide
from drivers.sdk.connector import load

ENGINES = {
    "native": "chaos.engines.native:NativeEngine",
    "kafka-connect": "chaos.engines.kafka_connect:KafkaConnectEngine",
    "command": "chaos.engines.command:CommandEngine",
}
"""Engine name -> its class, as an import path (a black-box engine's clients load only when used)."""


def engine_for(context: RunContext, source: SourceSide, sink: SinkSide) -> Engine:
    return load(ENGINES[context.experiment.pipeline.engine])(context, source, sink)
