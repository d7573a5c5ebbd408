"""What every benchmark shares: timing, a temporary environment, the result table and JSON file.

Kept here so that each benchmark module holds only what it measures.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence, TypeVar

from confluent_kafka.admin import NewTopic
from rich.console import Console
from rich.table import Table

from chaos.env.environment import Environment
from chaos.env.install import KAFKA_VERSION, TOXIPROXY_VERSION

REPO = Path(__file__).resolve().parents[1]
"""The repository's root: where the benchmarks that run the suite or a tool over the project run it."""
RESULTS = REPO / "bench" / "results"
logging.getLogger("chaos.librdkafka").addHandler(logging.NullHandler())  # e.g. "coordinator load in progress"
console = Console() if sys.stdout.isatty() else Console(width=110)  # no wrapping in logs
T = TypeVar("T")
LOAD_AT_START = os.getloadavg()
"""The 1/5/15-minute load averages when the benchmark started: another process's work skews figures."""


def timed(fn: Callable[[], T]) -> tuple[T, float]:
    """fn's result and its wall time in seconds (monotonic clock)."""
    start = time.perf_counter()
    result = fn()
    return result, time.perf_counter() - start


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def machine() -> dict[str, Any]:
    """Enough about the host to tell two result files apart: CPU, cores, RAM, OS, Python, services."""
    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    ram = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    return {"cpu": cpu, "cores": os.cpu_count(), "ram_gib": round(ram / 2**30, 1),
            "os": platform.platform(), "python": platform.python_version(),
            "kafka": os.environ.get("KAFKA_HOME", KAFKA_VERSION),
            "toxiproxy": os.environ.get("TOXIPROXY_BIN", TOXIPROXY_VERSION)}


@contextmanager
def environment(with_postgres: bool = False) -> Iterator[Environment]:
    """A private environment (Kafka, Toxiproxy, optionally PostgreSQL) in a temporary directory."""
    workdir = Path(tempfile.mkdtemp(prefix="chaos-bench-"))
    env = Environment.start(workdir / "env", with_postgres=with_postgres)
    try:
        yield env
    finally:
        env.stop()
        env.wait_stopped()
        shutil.rmtree(workdir, ignore_errors=True)


def create_topics(env: Environment, names: Sequence[str], partitions: int) -> None:
    """Create topics over the direct listener and wait for them (the admin client must outlive the futures)."""
    admin = env.admin()
    futures = admin.create_topics([NewTopic(n, partitions, 1) for n in names], operation_timeout=30)
    for future in futures.values():
        future.result(timeout=60)


def show(title: str, columns: Sequence[str], rows: Sequence[Sequence[object]], note: str = "",
         left: int = 1) -> None:
    """A rich table; the first `left` columns are labels, the others figures."""
    table = Table(title=title, caption=note or None)
    for i, name in enumerate(columns):
        table.add_column(name, justify="left" if i < left else "right")
    for row in rows:
        table.add_row(*(_cell(v) for v in row))
    console.print(table)


def _cell(value: object) -> str:
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 10 else f"{value:,.0f}" if abs(value) >= 1000 else f"{value:,.1f}"
    if isinstance(value, int):
        return f"{value:,}"
    return str(value)


def write_results(name: str, figures: dict[str, Any]) -> Path:
    """bench/results/<name>.json: the figures, the machine and when they were measured."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    body = {"benchmark": name, "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "machine": machine(), "load_average": {"at_start": [round(x, 2) for x in LOAD_AT_START],
                                                    "at_end": [round(x, 2) for x in os.getloadavg()]},
            **figures}
    path.write_text(json.dumps(body, indent=2) + "\n")
    console.print(f"wrote {path.relative_to(Path.cwd()) if path.is_relative_to(Path.cwd()) else path}")
    return path
