"""How `make test` shares the suite between its two pytest-xdist workers (`--dist loadgroup`).

Each test module stays whole on one worker, so that a module's shared fixtures (a three-broker
cluster, a Connect cluster, a certification run) start once. The heavy, timing-sensitive modules
share one group and so run one after another: two of them side by side on two cores would starve
each other's brokers, and their time bounds would measure the machine, not the connector.
"""

from __future__ import annotations

import pytest

HEAVY_MODULES = frozenset({"test_certification.py", "test_cluster.py", "test_explore.py", "test_kafka_connect.py"})
"""About 27 of the suite's 46 minutes; the other worker takes the rest meanwhile."""


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Name every test's group before xdist reads the groups (its own hook runs after this one)."""
    for item in items:
        if item.get_closest_marker("xdist_group") is None:
            module = item.path.name
            item.add_marker(pytest.mark.xdist_group("heavy" if module in HEAVY_MODULES else str(item.path)))
