"""The Kafka an experiment runs on, as a value the environment can be compared with.

In the spec layer, so that the environment (which comes after it) reads it, and not the other way.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class KafkaShape:
    """What Kafka an environment runs: one broker, or a cluster of brokers whose controllers run
    inside them or apart. Runs attach only to an environment of the shape they ask for."""

    brokers: int = 1
    separate_controllers: bool = False
    backend: Literal["native", "docker"] | None = None
    """Where the services run: processes of this machine, or Docker containers; asked for by an
    experiment, None is either (a new environment is then native)."""

    def admits(self, running: "KafkaShape") -> bool:
        """Whether a run that asks for this shape can use an environment running `running`."""
        return ((self.brokers, self.separate_controllers) == (running.brokers, running.separate_controllers)
                and self.backend in (None, running.backend))

    def __str__(self) -> str:
        where = " on Docker" if self.backend == "docker" else ""
        if self.brokers == 1:
            return f"one broker{where}"
        controllers = f"{self.brokers} separate controllers" if self.separate_controllers else "combined controllers"
        return f"{self.brokers} brokers with {controllers}{where}"
