"""The randomized fault schedule (nemesis): determinism, its promises over many seeds, validation,
the table for the run directory, and shrinking."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from pydantic import TypeAdapter, ValidationError

from chaos.experiment.shape import KafkaShape
from chaos.experiment.topology import available_targets
from drivers.sdk.links import NETWORK_LINKS
from faults.catalog import (
    FAULT_MODELS,
    CrashFault,
    Fault,
    KillFault,
    LatencyFault,
    NetworkFault,
    PartitionFault,
    ProcessFault,
)
from faults.nemesis import (
    DEFAULT_KINDS,
    PROCESS_KINDS,
    SCHEDULABLE_KINDS,
    SETTLE,
    NemesisSpec,
    describe,
    generate,
    resolved_seed,
)
from faults.targets import COMBINED_PAIR_LINKS, CONTROLLERS, NODES, PAIR_LINKS, PROCESSES

LINKS = ["workload-kafka", "worker-kafka", "worker-coordinator"]
PROCS = ["coordinator", "worker-0", "worker-1"]
SEEDS = range(40)
EPS = 1e-9


def dumps(faults: list) -> list[dict]:
    return [f.model_dump() for f in faults]


def check_promises(spec: NemesisSpec, faults: list, links=LINKS, procs=PROCS) -> None:
    assert [f.after_ready for f in faults] == sorted(f.after_ready for f in faults)
    allowed_targets = set(spec.targets) if spec.targets is not None else set(links) | set(procs)
    for f in faults:
        assert f.at_records is None and f.at is None and f.after_ready is not None
        assert spec.start - EPS <= f.after_ready and f.after_ready + f.duration <= spec.until + EPS, f
        assert spec.duration_min - EPS <= f.duration <= spec.duration_max + EPS, f
        assert f.kind in spec.kinds
        assert f.target in allowed_targets
        assert f.target in (links if isinstance(f, NetworkFault) else procs)
        # Whole milliseconds, so the table and the YAML in the run directory are exact.
        assert round(f.after_ready * 1000) == pytest.approx(f.after_ready * 1000) and round(f.duration * 1000) == pytest.approx(f.duration * 1000)
    # No target has two faults at once, and it settles between them.
    by_target: dict[str, list] = {}
    for f in faults:
        by_target.setdefault(f.target, []).append(f)
    for target, fs in by_target.items():
        for a, b in zip(fs, fs[1:]):
            assert a.after_ready + a.duration + SETTLE <= b.after_ready + EPS, (target, a, b)
    # Concurrency: sweep the injections and heals, heals first at equal times.
    events = sorted([(f.after_ready, 1) for f in faults] + [(f.after_ready + f.duration, -1) for f in faults],
                    key=lambda e: (e[0], e[1]))
    active = peak = 0
    for _, step in events:
        active += step
        peak = max(peak, active)
    assert peak <= spec.max_concurrent


def test_same_seed_same_schedule():
    spec = NemesisSpec(until=60)
    for seed in SEEDS:
        first = generate(spec, seed, LINKS, PROCS)
        again = generate(spec, seed, list(LINKS), tuple(PROCS))
        assert first and dumps(first) == dumps(again)


def test_different_seeds_different_schedules():
    spec = NemesisSpec(until=60)
    schedules = [dumps(generate(spec, seed, LINKS, PROCS)) for seed in SEEDS]
    for i, a in enumerate(schedules):
        for b in schedules[i + 1:]:
            assert a != b


def test_explicit_seed_overrides_the_experiment_seed():
    spec = NemesisSpec(until=60, seed=1234)
    assert dumps(generate(spec, 1, LINKS, PROCS)) == dumps(generate(spec, 2, LINKS, PROCS))
    assert resolved_seed(spec, 1) == 1234
    derived = NemesisSpec(until=60)
    assert resolved_seed(derived, 1) != resolved_seed(derived, 2)
    assert 0 <= resolved_seed(derived, 2**63 - 1) < 2**63
    # The derived seed is not the experiment seed itself: the workload already draws from that.
    assert resolved_seed(derived, 1) != 1


def test_no_global_random_state():
    import random

    spec = NemesisSpec(until=40)
    random.seed(1)
    first = dumps(generate(spec, 5, LINKS, PROCS))
    random.seed(2)
    random.random()
    assert dumps(generate(spec, 5, LINKS, PROCS)) == first


@pytest.mark.parametrize("spec", [
    NemesisSpec(until=60),
    NemesisSpec(until=120, interval=0.5, max_concurrent=1),
    NemesisSpec(until=120, interval=0.2, max_concurrent=3, duration_min=1, duration_max=10),
    NemesisSpec(until="30s", start="5s", interval="1s", duration_min="200ms", duration_max="2s"),
    NemesisSpec(until=300, interval=1, kinds=list(SCHEDULABLE_KINDS), max_concurrent=6),
    NemesisSpec(until=50, interval=0.3, kinds=["kill", "pause"], targets=["worker-0", "worker-1"]),
    NemesisSpec(until=50, interval=0.3, kinds=["latency"], targets=["worker-kafka"], max_concurrent=4),
    NemesisSpec(until=11, start=10, duration_min=0.5, duration_max=0.5, interval=0.1),
], ids=lambda s: f"until{s.until}-i{s.interval}-c{s.max_concurrent}-{len(s.kinds)}kinds")
def test_promises_hold_for_many_seeds(spec):
    total = 0
    for seed in SEEDS:
        faults = generate(spec, seed, LINKS, PROCS)
        check_promises(spec, faults)
        total += len(faults)
    assert total > 0


def test_faults_are_dense_enough_to_overlap():
    spec = NemesisSpec(until=120, interval=0.5, max_concurrent=3)
    peaks = []
    for seed in SEEDS:
        faults = generate(spec, seed, LINKS, PROCS)
        overlapping = sum(1 for a in faults for b in faults
                          if a is not b and a.after_ready < b.after_ready < a.after_ready + a.duration)
        peaks.append(overlapping)
    assert max(peaks) > 0


def test_every_kind_gets_drawn_with_its_parameters():
    spec = NemesisSpec(until=600, interval=1, kinds=list(SCHEDULABLE_KINDS), max_concurrent=6)
    seen: dict[str, list] = {}
    for seed in range(5):
        for f in generate(spec, seed, LINKS, PROCS):
            seen.setdefault(f.kind, []).append(f)
    assert set(seen) == set(SCHEDULABLE_KINDS)
    for f in seen["latency"]:
        assert 20 <= f.latency_ms <= 500 and 0 <= f.jitter_ms <= f.latency_ms
        assert f.direction in ("upstream", "downstream")
    assert {f.direction for f in seen["partition"]} == {"both", "upstream", "downstream"}
    assert all(4 <= f.rate_kbps <= 1024 for f in seen["bandwidth"])
    assert all(1024 <= f.bytes <= 1 << 20 for f in seen["limit_data"])
    assert all(f.size_variation <= f.average_size for f in seen["slicer"])
    assert all(isinstance(f, ProcessFault) for k in PROCESS_KINDS for f in seen[k])
    # The faults are the ordinary models, and round-trip through the experiment's Fault union.
    adapter = TypeAdapter(Fault)
    for fs in seen.values():
        for f in fs:
            assert isinstance(f, FAULT_MODELS)
            assert adapter.validate_python(f.model_dump()) == f


def test_default_spec():
    spec = NemesisSpec(until=30)
    assert spec.kinds == list(DEFAULT_KINDS) == ["partition", "down", "latency", "reset_peer", "kill", "pause"]
    assert (spec.seed, spec.targets, spec.start, spec.interval) == (None, None, 1.0, 3.0)
    assert (spec.duration_min, spec.duration_max, spec.max_concurrent) == (0.5, 4.0, 2)
    with pytest.raises(ValidationError):
        spec.until = 5  # frozen
    kinds = {f.kind for seed in SEEDS for f in generate(spec, seed, LINKS, PROCS)}
    assert kinds == set(DEFAULT_KINDS)


def test_default_targets_cover_every_link_and_process():
    spec = NemesisSpec(until=200, interval=1)
    targets = {f.target for seed in range(10) for f in generate(spec, seed, LINKS, PROCS)}
    assert targets == set(LINKS) | set(PROCS)


@pytest.mark.parametrize("fields, message", [
    ({"kinds": ["latncy"]}, "unknown fault kind 'latncy'"),
    ({"kinds": ["crash"]}, "armed at a named point"),
    ({"kinds": []}, "at least 1"),
    ({"kinds": ["kill", "kill"]}, "twice"),
    ({"targets": ["worker-kafak"]}, "did you mean 'worker-kafka'"),
    ({"targets": ["worker-0"], "kinds": ["latency", "kill"]}, "'latency' targets a link, but no link is among"),
    ({"targets": ["worker-kafka"], "kinds": ["kill", "down"]}, "'kill' targets a process, but no process is among"),
    ({"targets": ["worker-0"], "kinds": ["latency"]}, "'worker-0' is a process, but none of the kinds"),
    ({"targets": ["worker-kafka", "worker-0"], "kinds": ["kill"]}, "'worker-kafka' is a link, but none of the kinds"),
    ({"duration_min": 5, "duration_max": 1}, "greater than duration_max"),
    ({"start": 10, "until": 10.2}, "no fault fits"),
    ({"interval": 0}, "interval must be greater than zero"),
    ({"max_concurrent": 0}, "greater than or equal to 1"),
    ({"until": "soon"}, "expected a duration"),
    ({"nemesis": 1}, "Extra inputs are not permitted"),
])
def test_spec_validation(fields, message):
    with pytest.raises(ValueError, match=message):
        NemesisSpec.model_validate({"until": 30, **fields})


def test_until_is_required():
    with pytest.raises(ValidationError, match="until"):
        NemesisSpec()


def test_generate_rejects_targets_the_experiment_lacks():
    spec = NemesisSpec(until=30, targets=["coordinator-store"], kinds=["partition"])
    with pytest.raises(ValueError, match="unknown link 'coordinator-store'"):
        generate(spec, 1, LINKS, PROCS)
    spec = NemesisSpec(until=30, targets=["worker-5"], kinds=["kill"])
    with pytest.raises(ValueError, match="unknown process 'worker-5'"):
        generate(spec, 1, LINKS, PROCS)
    with pytest.raises(ValueError, match="'latency' targets a link, but the experiment has no link"):
        generate(NemesisSpec(until=30, kinds=["latency"]), 1, [], PROCS)
    with pytest.raises(ValueError, match="unknown link 'kafka'"):
        generate(NemesisSpec(until=30), 1, ["kafka"], PROCS)
    # A kind smuggled past the model's validation is still refused.
    bad = NemesisSpec.model_construct(**{**NemesisSpec(until=30).model_dump(), "kinds": ["flood"]})
    with pytest.raises(ValueError, match="unknown fault kind 'flood'"):
        generate(bad, 1, LINKS, PROCS)


def test_available_targets_follow_the_pipeline():
    native = {"engine": "native", "connector": None}
    kafka = SimpleNamespace(source="kafka", sink="parquet", profile="single-node-durable", workers=2, **native)
    assert available_targets(kafka) == (["workload-kafka", "worker-kafka", "worker-coordinator"],
                                        ["coordinator", "worker-0", "worker-1"])
    iceberg = SimpleNamespace(source="kafka-transactional", sink="iceberg-2pc", profile="distributed-durable",
                              workers=1, **native)
    assert available_targets(iceberg)[0] == ["workload-kafka", "worker-kafka", "worker-coordinator",
                                             "coordinator-store", "worker-catalog"]
    batch = SimpleNamespace(source="parquet-batch", sink="parquet", profile="in-memory", workers=1, **native)
    assert available_targets(batch) == (["worker-coordinator"], ["coordinator", "worker-0"])
    connect = SimpleNamespace(source="kafka-transactional", sink="iceberg-2pc", profile="distributed-durable",
                              workers=2, engine="kafka-connect", connector="iceberg-sink")
    assert available_targets(connect) == (["workload-kafka", "worker-kafka", "worker-catalog"],
                                          ["connect-0", "connect-1"])
    links, procs = available_targets(iceberg)
    assert set(links) <= set(NETWORK_LINKS) and set(procs) <= set(PROCESSES)


def test_on_a_cluster_the_nemesis_also_draws_the_nodes_and_the_links_between_them():
    kafka = SimpleNamespace(source="kafka", sink="parquet", profile="single-node-durable", workers=1,
                            engine="native", connector=None)
    links, processes = available_targets(kafka, KafkaShape(3))
    assert set(COMBINED_PAIR_LINKS) <= set(links) and set(NODES) <= set(processes)
    assert not set(links) & (set(PAIR_LINKS) - set(COMBINED_PAIR_LINKS)) and not set(CONTROLLERS) & set(processes)
    apart_links, apart_processes = available_targets(kafka, KafkaShape(3, separate_controllers=True))
    assert set(PAIR_LINKS) <= set(apart_links) and set(CONTROLLERS) <= set(apart_processes)
    spec = NemesisSpec(until=60, kinds=["down", "kill"], targets=["kafka-0->kafka-1", "kafka-2"], interval=2)
    drawn = generate(spec, 7, links, processes)
    assert {f.target for f in drawn} == {"kafka-0->kafka-1", "kafka-2"}
    with pytest.raises(ValueError, match="unknown link 'kafka-0->kafka-1'"):  # one broker: no links between nodes
        generate(spec, 7, *available_targets(kafka))


def test_the_loader_draws_the_nemesis_on_the_pipeline_s_own_targets():
    from chaos.experiment.loader import expand_nemesis
    from chaos.experiment.models import Experiment

    spec = {"until": 60, "interval": 1}
    x = Experiment.model_validate({
        "name": "n", "seed": 3, "workload": {"records": 1000, "rate": 100}, "nemesis": spec,
        "pipeline": {"source": "kafka-transactional", "sink": "iceberg-2pc", "profile": "distributed-durable"}})
    expanded = expand_nemesis(x)
    assert expanded.nemesis is None
    assert dumps(expanded.faults) == dumps(generate(NemesisSpec(**spec), 3, *available_targets(x.pipeline)))


def test_expanded_schedule_is_a_valid_experiment():
    from chaos.experiment.models import Experiment

    base = {"name": "nemesis", "seed": 11, "workload": {"records": 1000, "rate": 100},
            "pipeline": {"source": "kafka", "sink": "parquet", "profile": "single-node-durable", "workers": 2}}
    x = Experiment.model_validate(base)
    faults = generate(NemesisSpec(until=60, kinds=list(SCHEDULABLE_KINDS)), x.seed, *available_targets(x.pipeline))
    assert faults
    y = Experiment.model_validate({**base, "faults": [f.model_dump(exclude_none=True) for f in faults]})
    assert dumps(y.faults) == dumps(faults)


def test_describe():
    assert describe([]) == "(no faults)\n"
    faults = [
        PartitionFault(kind="partition", at=1.5, target="worker-kafka", duration=2, direction="upstream"),
        LatencyFault(kind="latency", at_records=500, target="workload-kafka", duration=3, latency_ms=200,
                     jitter_ms=10, toxicity=0.5),
        KillFault(kind="kill", at=10, target="worker-0", duration=1),
        CrashFault(kind="crash", point="sink.prepare.after"),
        KillFault(kind="kill", at_commits=8, target="worker-0", duration=1),
        KillFault(kind="kill", after_crash="sink.prepare.after", target="coordinator", duration=2),
        PartitionFault(kind="partition", after_ready=1.5, target="worker-kafka", duration=2),
    ]
    text = describe(faults)
    lines = text.splitlines()
    assert len(lines) == 1 + len(faults) and text.endswith("\n")
    assert lines[0].split() == ["#", "at", "heal", "kind", "target", "parameters"]
    assert lines[1].split() == ["0", "1.500s", "3.500s", "partition", "worker-kafka", "direction=upstream"]
    assert lines[2].split() == ["1", "at", "record", "500", "+3.000s", "latency", "workload-kafka",
                                "direction=downstream", "latency_ms=200", "jitter_ms=10", "toxicity=0.5"]
    assert lines[3].split() == ["2", "10.000s", "11.000s", "kill", "worker-0"]
    assert lines[4].split()[:7] == ["3", "armed,", "hit", "1", "-", "crash", "worker-0"]
    assert "point=sink.prepare.after" in lines[4]
    assert lines[5].split() == ["4", "at", "commit", "8", "+1.000s", "kill", "worker-0"]
    assert lines[6].split() == ["5", "after", "crash", "sink.prepare.after", "+2.000s", "kill", "coordinator"]
    assert lines[7].split() == ["6", "ready+1.500s", "ready+3.500s", "partition", "worker-kafka", "direction=both"]
    assert "None" not in text
    generated = generate(NemesisSpec(until=60), 9, LINKS, PROCS)
    assert len(describe(generated).splitlines()) == len(generated) + 1
