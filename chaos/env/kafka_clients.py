"""Configuration shared by every Kafka client the harness creates.

librdkafka logs go to the `chaos.librdkafka` logger (the run's harness log), not to the
terminal: a broker that is still starting, or a link that is down on purpose, is not news there.
"""

from __future__ import annotations

import logging
from typing import Any

LOGGER = logging.getLogger("chaos.librdkafka")


def client_config(bootstrap: str, **settings: Any) -> dict[str, Any]:
    return {"bootstrap.servers": bootstrap, "logger": LOGGER, **settings}
