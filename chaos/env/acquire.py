"""The environment a run or a suite works on: the shared one when it is up, else a private one.

Why its own module: `chaos run`, `chaos certify` (each of its lanes) and `chaos explore` all start or
attach the same way, and a private environment's data must go when its owner is done.
"""

from __future__ import annotations

import shutil
from contextlib import ExitStack
from pathlib import Path

from rich.console import Console

from chaos.env.environment import Environment
from chaos.env.paths import default_env_file
from chaos.errors import EnvironmentFailure
from chaos.experiment.shape import KafkaShape


def acquire_environment(env_file: Path | None, private: bool, with_postgres: bool, workdir: Path, stack: ExitStack,
                        console: Console, keep_env: bool = False, shape: KafkaShape = KafkaShape()) -> Environment:
    """Attach to a shared environment of the Kafka `shape` asked for when there is one (`chaos env
    up [--brokers 3 [--controllers separate]]`), otherwise start one in `workdir` that `stack`
    stops, and whose data it then deletes unless `keep_env` (its logs stay)."""
    shared = env_file or default_env_file()
    if not private and (env_file is not None or shared.exists()):
        try:
            env = Environment.attach(shared)
        except Exception:
            if env_file is not None:
                raise
            console.print(f"[yellow]the shared environment in {shared} is not healthy; starting a private one[/]")
        else:
            if shape.admits(env.shape):
                console.print(f"attached to the environment in {shared}")
                return env
            if env_file is not None:
                raise EnvironmentFailure(f"the environment in {env_file} runs {env.shape}; the experiment needs "
                                         f"{shape} (environment.kafka)")
            console.print(f"the shared environment runs {env.shape}, the experiment needs {shape}: "
                          "starting a private one")
    console.print(f"starting a private environment in {workdir} ...")
    if not keep_env:
        stack.callback(discard_data, workdir)  # after the stop below: callbacks run last first
    env = Environment.start(workdir, with_postgres=with_postgres, shape=shape)
    stack.callback(env.stop)
    return env


def discard_data(workdir: Path) -> None:
    """Delete a stopped private environment's data (tens of MB a run), keeping its logs."""
    for path in workdir.iterdir() if workdir.is_dir() else []:
        if path.name != "logs":
            shutil.rmtree(path, ignore_errors=True) if path.is_dir() else path.unlink(missing_ok=True)
