"""`chaos env install | up | down | status | images | compose`: the shared, detached environment."""

from __future__ import annotations

import time
from pathlib import Path

from rich.console import Console

from chaos.env import install as installer
from chaos.env.connect_install import install_connect
from chaos.env.environment import Environment
from chaos.env.paths import chaos_home, default_env_file
from chaos.env.postgres import ensure_postgres_installed
from chaos.errors import EXIT_ENVIRONMENT, EXIT_OK
from chaos.experiment.shape import KafkaShape


def env_command(action: str, console: Console, shape: KafkaShape = KafkaShape(),
                image_overrides: dict[str, str | None] | None = None, out: Path = Path("compose")) -> int:
    """`shape`: with `up`, one broker or a cluster of three, natively or on Docker (an environment of
    another shape is replaced); `image_overrides`: the Docker backend's images, by service; `out`:
    with `compose`, the folder the Compose project is written to."""
    state_file = default_env_file()
    if action == "compose":
        from chaos.env.compose import write

        for path in write(out):
            console.print(f"wrote {path}")
        console.print(f"start it with `docker compose up -d` in {out}, then attach: "
                      f"python -m chaos run EXPERIMENT --env {out / 'state.json'}")
        return EXIT_OK
    if action == "install":
        tools = installer.install()
        console.print(f"kafka {installer.KAFKA_VERSION}: {len(tools.kafka_classpath.split(':'))} jars")
        console.print(f"toxiproxy: {tools.toxiproxy_server}")
        console.print(f"postgresql: {ensure_postgres_installed()}")
        connect = install_connect()
        console.print(f"kafka connect {installer.KAFKA_VERSION}: {len(connect.classpath.split(':'))} jars; "
                      f"plug-ins in {connect.plugin_path}")
        return EXIT_OK
    if action == "images":
        from chaos.env.docker_engine import running_engine
        from chaos.env.docker_images import VARIABLES, build_local_images

        logs = chaos_home() / "docker"
        logs.mkdir(parents=True, exist_ok=True)
        with running_engine(logs):
            built = build_local_images(console.print)
        for service, image in built.items():
            console.print(f"export {VARIABLES[service]}={image}", highlight=False)
        return EXIT_OK
    if action == "up":
        if state_file.exists():
            try:
                existing = Environment.attach(state_file)
            except Exception:
                console.print("replacing an environment that is no longer healthy")
                _down(state_file)
            else:
                if existing.state.postgres is not None and shape.admits(existing.shape):
                    console.print(f"already up ({state_file})")
                    return EXIT_OK
                console.print("replacing an environment that has no PostgreSQL" if existing.state.postgres is None
                              else f"replacing an environment of {existing.shape} with one of {shape}")
                _down(state_file)
        workdir = chaos_home() / "env" / time.strftime("%Y%m%d-%H%M%S")
        env = Environment.start(workdir, detached=True, with_postgres=True, shape=shape,
                                image_overrides=image_overrides)
        env.save(state_file)
        _show(console, env)
        return EXIT_OK
    if action == "down":
        _down(state_file)
        console.print("down")
        return EXIT_OK
    if not state_file.exists():
        console.print("down (no shared environment)")
        return EXIT_ENVIRONMENT
    env = Environment.attach(state_file)
    _show(console, env)
    return EXIT_OK


def _down(state_file) -> None:
    if not state_file.exists():
        return
    try:
        env = Environment.load(state_file)
    except Exception:
        state_file.unlink()
        return
    env.stop()
    env.wait_stopped()
    state_file.unlink()


def _show(console: Console, env: Environment) -> None:
    console.print(f"kafka (direct):  {env.bootstrap_direct}")
    for link in env.state.kafka_links:
        console.print(f"kafka via {link}: {env.bootstrap(link)}")
    console.print(f"toxiproxy api:   127.0.0.1:{env.state.toxiproxy_api}")
    if env.state.postgres is not None:
        console.print(f"postgres:        127.0.0.1:{env.state.postgres} (user chaos, database chaos)")
    console.print(f"logs:            {env.state.logs}")
