"""The Docker backend's environment as a Compose project: `compose/`, for users who start it by hand.

`docker compose up -d` in that folder starts what `chaos env up --backend docker` starts (Kafka with a
listener per link advertised at its proxy, Toxiproxy with those proxies, PostgreSQL), on fixed ports
below the leased range (`chaos/env/ports.py`) and with fixed container names, so that the folder's
`state.json` can name them in advance: `chaos run X --env compose/state.json` attaches to it, and
every fault works as on the backend (a kill's heal starts the same container again).

The files are rendered from the code the backends run (`server_properties`, `broker_argv`,
PostgreSQL's settings), never written by hand: `chaos env compose` writes them, and a unit test
fails when the checked-in ones differ from what this module renders.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import yaml

from chaos.env import postgres as pg
from chaos.env.containers import ContainerLauncher
from chaos.env.docker_images import OFFICIAL, TOXIPROXY_SERVER, VARIABLES, container_tools
from chaos.env.kafka import LOG4J2, KafkaPorts, broker_argv, server_properties
from chaos.env.state import EnvState, LinkPorts, ProcessState
from chaos.errors import SpecError
from drivers.sdk.links import KAFKA_LINKS

TOXIPROXY_API = 9190
POSTGRES = 9191
KAFKA_DIRECT = 9192
KAFKA_CONTROLLER = 9193
LINK_PORTS = {link: LinkPorts(broker=9194 + 2 * index, proxy=9195 + 2 * index)
              for index, link in enumerate(KAFKA_LINKS)}
CLUSTER_ID = "5L6g3nShT-eMCtK--X86sw"
CONTAINERS = {service: f"chaos-compose-{service}" for service in ("kafka", "toxiproxy", "postgres")}
CONFIG = Path("/etc/chaos")
"""Where the folder's configuration is mounted in the Kafka and Toxiproxy containers."""
LOGS = Path("/var/log/chaos")
"""Where the folder's `logs/` is mounted in the Kafka container (its `server.log`, as on the backends)."""
KAFKA_DATA = Path("/var/lib/chaos/kafka-data")
POSTGRES_DATA = Path("/var/lib/postgresql/chaos-data")
"""In the container's own layer: a restarted container finds its data; `docker compose down` removes it."""
HEADER = "# Rendered by `python -m chaos env compose` from chaos/env/compose.py: edit that, not this file.\n"


def _image(service: str) -> str:
    return f"${{{VARIABLES[service]}:-{OFFICIAL[service]}}}"


def _kafka_command() -> str:
    tools = container_tools(ContainerLauncher({}, owner="compose"))
    storage = ["java", "-cp", tools.kafka_classpath, "kafka.tools.StorageTool", "format", "--standalone",
               "--ignore-formatted", "-t", CLUSTER_ID, "-c", str(CONFIG / "server.properties")]
    return f"{shlex.join(storage)} && exec {shlex.join(broker_argv(tools, CONFIG, LOGS))}"


def _postgres_command() -> str:
    bin_dir, data = pg.IMAGE_BIN, POSTGRES_DATA
    create = f"echo 'CREATE DATABASE {pg.DATABASE}' | {bin_dir / 'postgres'} --single -D {data} postgres"
    settings = " ".join(f"-c {name}={value}" for name, value in pg.server_settings())
    return (f"[ -s {data / 'PG_VERSION'} ] || {{ {bin_dir / 'initdb'} -D {data} -U {pg.USER} --auth=trust "
            f"&& {create}; }} && exec {bin_dir / 'postgres'} -D {data} -k '' -p {POSTGRES} {settings}")


def compose_file() -> dict:
    """The services as the Docker backend runs them: the host's network (every listener on
    127.0.0.1), the same command lines, and each image overridable as on the backend."""
    def shell(command: str) -> list[str]:
        return ["sh", "-c", command.replace("$", "$$")]  # Compose would interpolate a bare `$`

    return {"services": {
        "kafka": {"image": _image("kafka"), "container_name": CONTAINERS["kafka"], "network_mode": "host",
                  "user": "0:0", "entrypoint": shell(_kafka_command()),
                  "volumes": [f"./kafka:{CONFIG}:ro", f"./logs:{LOGS}"]},
        "toxiproxy": {"image": _image("toxiproxy"), "container_name": CONTAINERS["toxiproxy"],
                      "network_mode": "host", "entrypoint": [str(TOXIPROXY_SERVER)],
                      "command": ["-host", "127.0.0.1", "-port", str(TOXIPROXY_API),
                                  "-config", str(CONFIG / "toxiproxy.json")],
                      "volumes": [f"./toxiproxy.json:{CONFIG / 'toxiproxy.json'}:ro"]},
        "postgres": {"image": _image("postgres"), "container_name": CONTAINERS["postgres"], "network_mode": "host",
                     "user": "postgres", "stop_signal": "SIGINT", "environment": {"LC_ALL": "C"},
                     "entrypoint": shell(_postgres_command())},
    }}


def state() -> EnvState:
    """What `chaos run --env` attaches with: the fixed ports and container names. Its work directory
    is the folder the state file is in (`Environment.load` resolves a relative one)."""
    return EnvState(
        workdir=".", kafka_direct=KAFKA_DIRECT, kafka_controller=KAFKA_CONTROLLER, kafka_links=LINK_PORTS,
        toxiproxy_api=TOXIPROXY_API, postgres=POSTGRES, detached=True, backend="docker",
        processes={service: ProcessState(pid=0, start_time=0, container=name) for service, name in CONTAINERS.items()})


def render() -> dict[str, str]:
    """Each file of the folder, by its path in it."""
    ports = KafkaPorts(KAFKA_DIRECT, KAFKA_CONTROLLER, {link: (p.broker, p.proxy) for link, p in LINK_PORTS.items()})
    proxies = [{"name": link, "listen": f"127.0.0.1:{p.proxy}", "upstream": f"127.0.0.1:{p.broker}", "enabled": True}
               for link, p in LINK_PORTS.items()]
    return {
        "docker-compose.yml": HEADER + yaml.safe_dump(compose_file(), sort_keys=False, width=120),
        "kafka/server.properties": HEADER + server_properties(ports, KAFKA_DATA),
        "kafka/log4j2.properties": HEADER + LOG4J2,
        "toxiproxy.json": json.dumps(proxies, indent=2) + "\n",
        "state.json": state().model_dump_json(indent=2) + "\n",
    }


def write(folder: Path) -> list[Path]:
    """Write the folder's files (others in it are left alone); the paths written."""
    written = []
    for name, text in render().items():
        path = folder / name
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        except OSError as e:
            raise SpecError(str(path), [f"--out {folder}: cannot be written: {e.strerror or e}"]) from e
        written.append(path)
    return written
