"""How `pytest -n 2` (what `make test` runs) shares the suite between two pytest-xdist workers.

Each test module stays whole on one worker, so that a module's shared fixtures (a three-broker
cluster, a Connect cluster, a certification run) start once. The heavy, timing-sensitive modules
share one unit of work and so run one after another: two of them side by side on two cores would
starve each other's brokers, and their time bounds would measure the machine, not the connector.

A scheduler of our own rather than `--dist loadgroup` with `xdist_group` marks: xdist 3.8 groups
by rewriting `item._nodeid`, which pytest 9 no longer reads, so the marks were silently ignored
and both workers ran the certification suite at once.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import Any

HEAVY_MODULES = frozenset({"test_certification.py", "test_cluster.py", "test_explore.py", "test_kafka_connect.py"})
"""About 24 of the suite's 46 minutes of test time; the other worker takes the rest meanwhile."""


def pytest_xdist_make_scheduler(config: Any, log: Any) -> Any:
    from xdist.scheduler import LoadScopeScheduling

    class ModuleScheduling(LoadScopeScheduling):
        """One unit per module, and one for all the heavy modules together (queued first, as the
        scopes are in collection order and test_certification.py comes first)."""

        def _split_scope(self, nodeid: str) -> str:
            module = nodeid.split("::", 1)[0]
            return "heavy" if PurePosixPath(module).name in HEAVY_MODULES else module

    return ModuleScheduling(config, log)
