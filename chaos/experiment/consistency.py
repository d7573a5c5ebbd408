"""The checks that span sections of an experiment: does the schedule fit this pipeline and workload?

Each check is given whichever sections validated on their own (any may be None), so the loader can
report them together with every field error, each at its own line, instead of only once the fields
are right. Each problem carries the location it is about, in the experiment's own terms.
"""

from __future__ import annotations

from types import MappingProxyType
from typing import Any, Iterable, Iterator

from chaos.experiment.topology import pipeline_links, pipeline_processes, pipeline_roles
from drivers.connectors import SINKS, SOURCES
from drivers.engines import NATIVE
from drivers.sdk.connector import Connector, load
from drivers.sdk.crashpoints import role_of
from drivers.sdk.links import NETWORK_LINKS
from faults.catalog import (
    ClockFault,
    CorruptFault,
    CrashFault,
    DiskFault,
    DownFault,
    Fault,
    LoseUnfsyncedFault,
    ProcessFault,
)
from faults.nemesis import trigger_text
from faults.reduce import overlapping
from faults.targets import PROCESSES, ROLES

Location = tuple[Any, ...]
Problem = tuple[Location, str]


def inconsistencies(pipeline: Any | None, workload: Any | None, faults: Iterable[tuple[int, Fault]],
                    expect: Any | None = None) -> list[Problem]:
    """Every cross-section problem among the sections given (a missing section skips its checks)."""
    problems = [*_pipeline_and_workload(pipeline, workload), *_prefill(pipeline, workload)]
    faults = list(faults)
    for index, fault in faults:
        problems += [((("faults", index, *where)), message) for where, message in _fault(fault, pipeline, workload)]
        problems += [((("faults", index, *where)), message)
                     for where, message in _after_the_run(fault, workload, expect)]
    return problems + [*_merged_crashes(faults), *_colliding(faults), *_unarmed_after_crash(faults)]


def _merged_crashes(faults: list[tuple[int, Fault]]) -> Iterator[Problem]:
    """A process arms one hit per crash point: a second crash fault on the same point and process
    would silently replace the first, so the schedule run would not be the one written."""
    first: dict[tuple[str, str], int] = {}
    for index, fault in faults:
        if not isinstance(fault, CrashFault):
            continue
        armed = first.setdefault((fault.process, fault.point), index)
        if armed != index:
            yield (("faults", index, "point"), (f"{fault.process} already crashes at {fault.point} (faults[{armed}]); "
                                                "a process arms one hit per crash point, so this one would replace it"))


TOUCHING = 1e-6
"""Seconds by which a fault may start after another's heal and still meet it: the schedule fires a
due fault before it heals an expired one, and a duration counts from the end of its injection, so a
fault due the moment another heals is injected before that heal. A microsecond is below anything a
duration written in milliseconds can tell apart, and above the float error of adding two of them."""

_HOLDS = MappingProxyType({
    "process": "a process takes one kill, terminate or pause at a time: this one would act on a process "
               "already stopped, and the first heal would restart or resume it while the other still holds it",
    "link": "a link's proxy is either up or down: this down would find it down already, and the first heal "
            "would bring it back up while the other still holds it",
    "disk": "every disk fault goes through the run's one control file: this one would replace the other "
            "there, and the first heal would remove the file, ending both",
    "clock": "a process has one clock: this fault would set it over the other's offset, and the first heal "
             "would set it true while the other still holds it",
})
"""Why two faults on one thing, active at once, are not the schedule written, by what they hold."""


def _colliding(faults: list[tuple[int, Fault]]) -> Iterator[Problem]:
    """Two faults that hold the same thing (a process, a link's proxy, the disk control file) at the
    same time would silently run another schedule: the second acts on what the first already
    stopped, and the first heal releases both. Toxics and partitions are not among them: each is a
    toxic of its own name on the link, so they stack and each heal removes only its own.

    Only faults on the same clock are compared: `at` with `at`, `after_ready` with `after_ready`,
    and equal event triggers (the same record count, commit count or crash point), which fire in
    the same tick. Across clocks (the pipeline is ready some seconds after the workload starts, a
    commit count is reached at no fixed time) whether two spans meet is decided by the run, not the
    file, so nothing is refused there. Each problem is at the trigger of the fault that starts later."""
    timed = [(i, f, held) for i, f in faults if not isinstance(f, CrashFault) and (held := _held(f))]
    for position, (i, first, held) in enumerate(timed):
        for j, second, other in timed[position + 1:]:
            if not held & other or not _meet(first, second):
                continue
            (earlier_index, earlier), (later_index, later) = sorted(
                ((i, first), (j, second)), key=lambda pair: (_start(pair[1]), pair[0]))
            thing = min(held & other)[0]
            yield (("faults", later_index, _trigger(later)),
                   f"starts no later than faults[{earlier_index}] ({_span(earlier)}) heals; {_HOLDS[thing]}")


def _held(fault: Fault) -> frozenset[tuple[str, ...]]:
    """What a fault holds while it is active, such that a second fault on any of it would collide;
    nothing for the faults that stack (toxics and partitions, each its own named toxic)."""
    if isinstance(fault, ProcessFault):
        return frozenset({("process", fault.target)})
    if isinstance(fault, LoseUnfsyncedFault):
        return frozenset(("process", name) for name in PROCESSES)  # a power cut kills every one of them
    if isinstance(fault, DownFault):
        return frozenset({("link", fault.target)})
    if isinstance(fault, DiskFault):
        return frozenset({("disk",)})  # one control file, whatever the target
    if isinstance(fault, ClockFault):
        return frozenset({("clock", fault.target)})
    return frozenset()


def _meet(a: Fault, b: Fault) -> bool:
    """Whether two faults are certainly active at once: equal event triggers fire together; timed
    ones meet when one starts no later than the other heals (`overlapping`, on one target)."""
    if _trigger(a) not in ("at", "after_ready") or _trigger(b) not in ("at", "after_ready"):
        return _trigger(a) == _trigger(b) and getattr(a, _trigger(a)) == getattr(b, _trigger(b))
    # `overlapping` pairs faults by target: a disk fault on `*` and one on worker-0 share the file.
    return overlapping([a, b.model_copy(update={"target": a.target})], TOUCHING)


def _trigger(fault: Fault) -> str:
    """The name of the fault's one trigger field."""
    return next(name for name in ("at", "after_ready", "at_records", "at_commits", "after_crash")
                if getattr(fault, name) is not None)


def _start(fault: Fault) -> float:
    """Where the fault starts on its clock (an event trigger: at the event itself)."""
    return fault.at if fault.at is not None else fault.after_ready if fault.after_ready is not None else 0.0


def _span(fault: Fault) -> str:
    """`kill worker-0 at 5s for 3s`: the other fault of a problem, as its entry reads."""
    when = (f"at {fault.at:g}s" if fault.at is not None else f"after_ready {fault.after_ready:g}s"
            if fault.after_ready is not None else trigger_text(fault))
    return f"{fault.kind} {fault.target} {when} for {fault.duration:g}s"


def _unarmed_after_crash(faults: list[tuple[int, Fault]]) -> Iterator[Problem]:
    """Only an armed crash point fires (and says so in the history): an `after_crash` on a point no
    `crash` fault arms would never be triggered."""
    armed = sorted({f.point for _, f in faults if isinstance(f, CrashFault)})
    for index, fault in faults:
        if not isinstance(fault, CrashFault) and fault.after_crash is not None and fault.after_crash not in armed:
            yield (("faults", index, "after_crash"), (f"{fault.after_crash} never fires: no `crash` fault arms it "
                                                      f"(armed: {', '.join(armed) or 'none'}), and only an armed "
                                                      "crash point fires"))


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


def _prefill(pipeline: Any | None, workload: Any | None) -> Iterator[Problem]:
    """A prefilled workload is produced before the job starts: only a source that a producer feeds
    during the run has one to produce first."""
    if pipeline is None or workload is None or not workload.prefill:
        return
    if not load(SOURCES[pipeline.source].harness).live_feed:
        yield (("workload", "prefill"), (f"the {pipeline.source} source's input is all written before the job "
                                         "starts anyway; prefill is for a source that a producer feeds during the "
                                         "run, such as kafka"))


def _fault(fault: Fault, pipeline: Any | None, workload: Any | None) -> Iterator[tuple[Location, str]]:
    crash = isinstance(fault, CrashFault)
    if not crash and workload is not None and fault.at_records is not None and fault.at_records >= workload.records:
        yield (("at_records",), f"{fault.at_records} never fires: the workload produces {workload.records} records")
    elif not crash and workload is not None and fault.at_records is not None and workload.prefill:
        yield (("at_records",), ("with workload.prefill every record is produced before the pipeline starts, so "
                                 "this would fire as it starts; use `after_ready` or `at_commits`"))
    if pipeline is None:
        return
    point, field = (fault.point, "point") if crash else (fault.after_crash, "after_crash")
    if point is not None and (unreached := _unreached(point, SOURCES[pipeline.source], SINKS[pipeline.sink])):
        yield ((field,), unreached)
    target = fault.process if crash else fault.target
    if target in PROCESSES and target not in (processes := pipeline_processes(pipeline)):
        yield (("target",), f"{target} is not in this pipeline, which has {pipeline.workers} worker(s) "
                            f"(its processes: {', '.join(processes)})")
    if target in ROLES and target not in pipeline_roles(pipeline):
        yield (("target",), f"{target} is a role this pipeline has no process for (its roles: "
                            f"{', '.join(pipeline_roles(pipeline)) or 'none'})")
    if pipeline.engine != NATIVE and point is not None:
        yield ((field,), f"a black-box engine ({pipeline.engine}) has no crash points: time its faults with "
                         "`at_commits`, `at_records` or `at`")
    if target == "postgres" and pipeline.profile != "distributed-durable":
        yield (("target",), "postgres is only used by the distributed-durable profile")
    if isinstance(fault, CorruptFault) and SINKS[pipeline.sink].capabilities.networked:
        yield (("kind",), f"a corrupt fault damages a data file of the sink's output, and the {pipeline.sink} sink "
                          "writes to a service, not to files")
    if isinstance(fault, LoseUnfsyncedFault) and not getattr(load(SINKS[pipeline.sink].harness), "local_output", False):
        yield (("kind",), f"lost unfsynced writes strike a sink's files in the run's output directory, and the "
                          f"{pipeline.sink} sink does not write its output there")
    if isinstance(fault, ClockFault) and fault.target in PROCESSES and pipeline.engine != NATIVE:
        yield (("kind",), f"a clock fault moves the clock of our runtime's coordinator or a worker, started with "
                          f"the clock shim; the {pipeline.engine} engine's processes are not ours to start")
    if target in NETWORK_LINKS and target not in (links := pipeline_links(pipeline)):
        yield (("target",), f"{target} is a link this pipeline does not have (its links: {', '.join(links)})")


def _after_the_run(fault: Fault, workload: Any | None, expect: Any | None) -> Iterator[tuple[Location, str]]:
    """A timed fault that starts once the run is surely over meets no pipeline: the workload produces
    its records in records / rate seconds, and the pipeline has `expect.drain_timeout` after that to
    catch up, or the run fails its drain. Left alone with a prefilled workload (it is all produced
    before the job starts, and how fast the pipeline reads it is the run's to tell)."""
    if workload is None or expect is None or workload.prefill or isinstance(fault, CrashFault):
        return
    trigger = _trigger(fault)
    if trigger not in ("at", "after_ready"):
        return
    produced_by = workload.records / workload.rate
    if _start(fault) >= produced_by + expect.drain_timeout:
        yield ((trigger,), (f"{_start(fault):g}s is after the run is over: the workload produces its "
                            f"{workload.records} records in {produced_by:g}s at {workload.rate:g}/s, and the pipeline "
                            f"must catch up within drain_timeout ({expect.drain_timeout:g}s) of that, so the fault "
                            "would meet no pipeline; fire it earlier, or raise expect.drain_timeout"))


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
