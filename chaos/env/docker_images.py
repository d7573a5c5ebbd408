"""The images of the `docker` backend: the official ones by default, or local equivalents built here.

Defaults are the projects' own images at our versions. Each is overridden by an environment
variable (`CHAOS_KAFKA_IMAGE`, `CHAOS_TOXIPROXY_IMAGE`) or a flag of `chaos env up`.

`build_local_images` makes equivalents with no registry at all, for machines that reach none (this
project's CI): a Debian base from `debootstrap`, then Debian's OpenJDK with our Maven-resolved
Kafka jars, and our `go install`ed Toxiproxy. They keep the official images' layout (`java` on
PATH and the jars in `/opt/kafka/libs`; the server at `/toxiproxy`), which is all the backend
assumes of an image. Each is built once: a label records what it was built from.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import tempfile
from pathlib import Path

from chaos.env import install as installer
from chaos.env.containers import ContainerLauncher
from chaos.env.docker_engine import docker_errors, engine
from chaos.env.install import Tools, run_step
from chaos.env.paths import chaos_home
from chaos.errors import EnvironmentFailure

POSTGRES_MAJOR = "15"
"""Debian bookworm's PostgreSQL, as the native backend installs it."""
OFFICIAL = {
    "kafka": f"apache/kafka:{installer.KAFKA_VERSION}",
    "toxiproxy": f"ghcr.io/shopify/toxiproxy:{installer.TOXIPROXY_VERSION.lstrip('v')}",
    "postgres": f"postgres:{POSTGRES_MAJOR}",
}
VARIABLES = {"kafka": "CHAOS_KAFKA_IMAGE", "toxiproxy": "CHAOS_TOXIPROXY_IMAGE", "postgres": "CHAOS_POSTGRES_IMAGE"}
LOCAL = {
    "kafka": f"chaos-local/kafka:{installer.KAFKA_VERSION}",
    "toxiproxy": f"chaos-local/toxiproxy:{installer.TOXIPROXY_VERSION.lstrip('v')}",
    "postgres": f"chaos-local/postgres:{POSTGRES_MAJOR}",
}
BASE = "chaos-local/debian:bookworm"
MIRROR = "http://deb.debian.org/debian"
KAFKA_LIBS = "/opt/kafka/libs"
TOXIPROXY_SERVER = Path("/toxiproxy")
SOURCE_LABEL = "chaos.source"

KAFKA_DOCKERFILE = f"""FROM {BASE}
RUN apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    openjdk-17-jre-headless >/dev/null && rm -rf /var/lib/apt/lists/*
COPY libs/ {KAFKA_LIBS}/
"""
POSTGRES_DOCKERFILE = f"""FROM {BASE}
RUN mkdir -p /etc/postgresql-common/createcluster.d \\
    && echo 'create_main_cluster = false' > /etc/postgresql-common/createcluster.d/chaos.conf \\
    && apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends \\
    postgresql-{POSTGRES_MAJOR} >/dev/null && rm -rf /var/lib/apt/lists/*
STOPSIGNAL SIGINT
"""
TOXIPROXY_DOCKERFILE = f"""FROM scratch
COPY toxiproxy-server {TOXIPROXY_SERVER}
ENTRYPOINT ["{TOXIPROXY_SERVER}"]
"""


def images(overrides: dict[str, str | None] | None = None) -> dict[str, str]:
    """The image of each service: a flag's, else the environment variable's, else the official one."""
    chosen = {}
    for service, official in OFFICIAL.items():
        flag = (overrides or {}).get(service)
        chosen[service] = flag or os.environ.get(VARIABLES[service]) or official
    return chosen


def container_tools(launcher: ContainerLauncher) -> Tools:
    """What starts the services inside their images (the same layout in official and local ones)."""
    return Tools(java="java", kafka_classpath=f"{KAFKA_LIBS}/*", toxiproxy_server=TOXIPROXY_SERVER,
                 toxiproxy_cli=None, launcher=launcher)


def build_local_images(say=print) -> dict[str, str]:
    """Build (or find already built) the local images; the service-to-image map to use them."""
    tools = installer.install()
    jars = [Path(jar) for jar in tools.kafka_classpath.split(":")]
    _ensure_base(say)
    _ensure_image(LOCAL["kafka"], KAFKA_DOCKERFILE, {f"libs/{jar.name}": jar for jar in jars}, say)
    _ensure_image(LOCAL["toxiproxy"], TOXIPROXY_DOCKERFILE, {"toxiproxy-server": tools.toxiproxy_server}, say)
    _ensure_image(LOCAL["postgres"], POSTGRES_DOCKERFILE, {}, say)
    return dict(LOCAL)


def _exists(tag: str, source: str | None = None) -> bool:
    try:
        image = engine().images.get(tag)
    except docker_errors().ImageNotFound:
        return False
    return source is None or image.labels.get(SOURCE_LABEL) == source


def _ensure_base(say) -> None:
    """A minimal Debian bookworm, from Debian's own packages (the rootfs tarball is cached)."""
    if _exists(BASE):
        return
    tarball = chaos_home() / "docker" / "debian-bookworm-minbase.tar"
    if not tarball.exists():
        debootstrap = shutil.which("debootstrap")
        if debootstrap is None:
            raise EnvironmentFailure("building the local base image needs debootstrap (Debian: apt-get install "
                                     "debootstrap)")
        say(f"debootstrap bookworm into {tarball} ...")
        tarball.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=tarball.parent) as scratch:
            rootfs = Path(scratch) / "rootfs"
            run_step([debootstrap, "--variant=minbase", "bookworm", str(rootfs), MIRROR], "debootstrap")
            partial = tarball.with_suffix(".partial")
            run_step(["tar", "-C", str(rootfs), "-cf", str(partial), "."], "tar")
            os.replace(partial, tarball)
    say(f"importing {BASE} ...")
    repository, tag = BASE.split(":")
    engine().api.import_image(src=str(tarball), repository=repository, tag=tag)


def _ensure_image(tag: str, dockerfile: str, files: dict[str, Path], say) -> None:
    """Build `tag` from `dockerfile` and `files` (context path to host file) unless built from the same."""
    source = hashlib.sha256("\n".join([dockerfile, *sorted(files)]).encode()).hexdigest()[:16]
    if _exists(tag, source):
        return
    say(f"building {tag} ...")
    with tempfile.TemporaryDirectory() as context:
        for name, path in files.items():
            target = Path(context) / name
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, target)
        (Path(context) / "Dockerfile").write_text(f"{dockerfile}LABEL {SOURCE_LABEL}={source}\n")
        try:
            engine().images.build(path=context, tag=tag, network_mode="host", rm=True, forcerm=True)
        except docker_errors().DockerException as e:
            raise EnvironmentFailure(f"building {tag} failed: {e}") from e
