"""The checks that span sections of an experiment: does the schedule fit this pipeline and workload?

Each check is given whichever sections validated on their own (any may be None), so the loader can
report them together with every field error, each at its own line, instead of only once the fields
are right. Each problem carries the location it is about, in the experiment's own terms.
"""

from __future__ import annotations

from typing import Any, Iterable, Iterator

from chaos.experiment.topology import pipeline_links
from drivers.connectors import SINKS, SOURCES
from drivers.sdk.connector import Connector
from drivers.sdk.crashpoints import role_of
from drivers.sdk.links import NETWORK_LINKS
from faults.catalog import CrashFault, Fault
from faults.targets import PROCESSES

Location = tuple[Any, ...]
Problem = tuple[Location, str]


def inconsistencies(pipeline: Any | None, workload: Any | None,
                    faults: Iterable[tuple[int, Fault]]) -> list[Problem]:
    """Every cross-section problem among the sections given (a missing section skips its checks)."""
    problems = list(_pipeline_and_workload(pipeline, workload))
    faults = list(faults)
    for index, fault in faults:
        problems += [((("faults", index, *where)), message) for where, message in _fault(fault, pipeline, workload)]
    return problems + list(_merged_crashes(faults))


def _merged_crashes(faults: list[tuple[int, Fault]]) -> Iterator[Problem]:
    """A process arms one hit per crash point: a second crash fault on the same point and process
    would silently replace the first, so the schedule run would not be the one written."""
    first: dict[tuple[str, str], int] = {}
    for index, fault in faults:
        if not isinstance(fault, CrashFault):
            continue
        armed = first.setdefault((fault.process, fault.point), index)
        if armed != index:
            yield (("faults", index, "point"), f"{fault.process} already crashes at {fault.point} "
                   f"(faults[{armed}]); a process arms one hit per crash point, so this one would replace it")


def _pipeline_and_workload(pipeline: Any | None, workload: Any | None) -> Iterator[Problem]:
    if pipeline is None:
        return
    source, sink = SOURCES[pipeline.source], SINKS[pipeline.sink]
    if pipeline.allowed_lateness is not None and not source.capabilities.late_routing:
        routing = [k.name for k in SOURCES.values() if k.capabilities.late_routing]
        yield (("pipeline", "allowed_lateness"), "event-time late routing needs a source whose splits carry "
               f"watermarks ({', '.join(routing)}), not {pipeline.source}")
    if workload is None or workload.schema_change_at is None:
        return
    if workload.schema_change_at >= workload.records:
        yield (("workload", "schema_change_at"), f"{workload.schema_change_at} never happens: the workload "
               f"produces {workload.records} records")
    for kind in (source, sink):
        if not kind.capabilities.takes_every_schema_change:
            takes = ", ".join(sorted(kind.capabilities.schema_changes)) or "no column change"
            yield (("workload", "schema_change_at"), "the workload's schema change drops, widens and adds a "
                   f"column, but the {kind.name} {kind.role} takes {takes}")


def _fault(fault: Fault, pipeline: Any | None, workload: Any | None) -> Iterator[tuple[Location, str]]:
    crash = isinstance(fault, CrashFault)
    if not crash and workload is not None and fault.at_records is not None and fault.at_records >= workload.records:
        yield (("at_records",), f"{fault.at_records} never fires: the workload produces {workload.records} records")
    if pipeline is None:
        return
    point, field = (fault.point, "point") if crash else (fault.after_crash, "after_crash")
    if point is not None and (unreached := _unreached(point, SOURCES[pipeline.source], SINKS[pipeline.sink])):
        yield ((field,), unreached)
    target = fault.process if crash else fault.target
    workers = {f"worker-{i}" for i in range(pipeline.workers)}
    if target in PROCESSES and target != "coordinator" and target not in workers:
        yield (("target",), f"{target} is not in this pipeline, which has {pipeline.workers} worker(s)")
    if target == "postgres" and pipeline.profile != "distributed-durable":
        yield (("target",), "postgres is only used by the distributed-durable profile")
    if target in NETWORK_LINKS and target not in (links := pipeline_links(pipeline)):
        yield (("target",), f"{target} is a link this pipeline does not have (its links: {', '.join(links)})")


def _unreached(point: str, source: Connector, sink: Connector) -> str | None:
    """Why a crash point would never fire in this pipeline, or None when its source or sink passes it."""
    if role_of(point) == "coordinator":
        return None
    kind = source if point.startswith("source.") else sink
    if point in kind.crash_points:
        return None
    return (f"crash point {point} is never passed by the {kind.name} {kind.role}, so it could never fire; "
            f"it passes {', '.join(kind.crash_points) or 'no crash point'} (and the coordinator's points)")


def describe(location: Location) -> str:
    """`faults[2].target`, `workload.schema_change_at`: a location as a user reads it."""
    text = ""
    for key in location:
        name = str(key) if str(key).isprintable() and str(key).strip() == str(key) else repr(key)
        text += f"[{key}]" if isinstance(key, int) else (f".{name}" if text else name)
    return text
