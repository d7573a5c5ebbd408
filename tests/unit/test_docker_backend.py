"""The Docker backend's pure parts: which image runs, what a container is started with, which
environment a run may attach to, and what the spec refuses on Docker."""

from __future__ import annotations

from pathlib import Path

from chaos.env.containers import LOG_LABEL, OWNER_LABEL, ContainerLauncher, ContainerRef
from chaos.env.docker_images import OFFICIAL, images
from chaos.env.processes import ProcessRef
from chaos.env.state import ProcessState
from chaos.experiment.loader import parse_experiment
from chaos.experiment.shape import KafkaShape
from tests.unit.test_cluster_spec import problems_of


def test_an_image_is_the_flag_s_else_the_variable_s_else_the_official_one(monkeypatch):
    monkeypatch.delenv("CHAOS_KAFKA_IMAGE", raising=False)
    monkeypatch.delenv("CHAOS_TOXIPROXY_IMAGE", raising=False)
    monkeypatch.delenv("CHAOS_POSTGRES_IMAGE", raising=False)
    assert images() == OFFICIAL
    assert OFFICIAL["kafka"] == "apache/kafka:4.1.1" and OFFICIAL["toxiproxy"] == "ghcr.io/shopify/toxiproxy:2.12.0"
    monkeypatch.setenv("CHAOS_KAFKA_IMAGE", "mine/kafka:1")
    assert images()["kafka"] == "mine/kafka:1" and images()["postgres"] == OFFICIAL["postgres"]
    assert images({"kafka": "flag/kafka:2", "toxiproxy": None})["kafka"] == "flag/kafka:2"


def test_a_container_runs_the_native_command_line_on_the_host_network_with_the_workdir_mounted():
    launcher = ContainerLauncher({"kafka": "k:1", "toxiproxy": "t:1", "postgres": "p:1"}, owner="/w", mounts=["/w"])
    options = launcher._options("kafka", ["java", "-Xmx1g", "kafka.Kafka", "/w/server.properties"], Path("/w/k.log"))
    assert options["image"] == "k:1" and options["network_mode"] == "host" and options["user"] == "0:0"
    assert options["entrypoint"] == ["java"] and options["command"] == ["-Xmx1g", "kafka.Kafka", "/w/server.properties"]
    assert options["volumes"] == {"/w": {"bind": "/w", "mode": "rw"}}
    assert options["labels"] == {OWNER_LABEL: "/w", LOG_LABEL: "/w/k.log"}
    assert launcher._options("postgres", ["/usr/lib/postgresql/15/bin/postgres"], None)["user"] == "postgres"
    assert launcher.service_env(Path("/w"), "kafka") is None  # no clock shim inside an image


def test_a_recorded_service_is_found_again_as_a_process_or_a_container():
    assert isinstance(ProcessState(pid=5, start_time=7).ref(), ProcessRef)
    ref = ProcessState.of(ContainerRef("abc", 5, 7)).ref()
    assert ref == ContainerRef("abc", 5, 7)
    assert ProcessState.of(ProcessRef(5, 7)).container is None


def test_a_run_that_names_no_backend_attaches_to_either():
    docker, native = KafkaShape(backend="docker"), KafkaShape(backend="native")
    assert KafkaShape().admits(docker) and KafkaShape().admits(native)
    assert docker.admits(docker) and not docker.admits(native) and not native.admits(docker)
    assert not KafkaShape(backend="docker").admits(KafkaShape(3, backend="docker"))
    assert str(docker) == "one broker on Docker"


def spec(extra: str = "", pipeline: str = "", faults: str = "") -> str:
    return (f"name: unit\nseed: 1\n{pipeline}workload:\n  records: 100\n  rate: 100\n{faults}"
            f"environment:\n  backend: docker\n{extra}")


def test_the_docker_backend_refuses_what_it_does_not_run_yet():
    assert parse_experiment(spec(), "exp.yaml").environment.shape == KafkaShape(backend="docker")
    eos = "pipeline:\n  source: kafka-transactional\n  sink: parquet-2pc\n  profile: distributed-durable\n"
    assert parse_experiment(spec(pipeline=eos), "exp.yaml").environment.backend == "docker"
    assert any("environment.backend" in p and "one broker" in p
               for p in problems_of(spec("  kafka:\n    brokers: 3\n")))
    connect = ("pipeline:\n  engine: kafka-connect\n  connector: iceberg-sink\n  source: kafka-transactional\n"
               "  sink: iceberg-2pc\n  profile: distributed-durable\n")
    assert any("environment.backend" in p and "Kafka Connect" in p for p in problems_of(spec(pipeline=connect)))
    clock = "faults:\n  - kind: clock\n    mode: jump\n    offset: 60s\n    target: kafka\n    after_ready: 1s\n" \
            "    duration: 1s\n"
    assert any("faults[0].target" in p and "clock shim" in p for p in problems_of(spec(faults=clock)))
    assert parse_experiment(spec().replace("backend: docker", "backend: native"), "exp.yaml").environment.shape == \
        KafkaShape(backend="native")
