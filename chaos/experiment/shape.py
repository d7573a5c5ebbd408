"""The Kafka an experiment runs on, as a value the environment can be compared with.

In the spec layer, so that the environment (which comes after it) reads it, and not the other way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class KafkaShape:
    """What Kafka an environment runs: one broker, or a cluster of brokers whose controllers run
    inside them or apart. Runs attach only to an environment of the shape they ask for."""

    brokers: int = 1
    separate_controllers: bool = False

    def __str__(self) -> str:
        if self.brokers == 1:
            return "one broker"
        controllers = f"{self.brokers} separate controllers" if self.separate_controllers else "combined controllers"
        return f"{self.brokers} brokers with {controllers}"
