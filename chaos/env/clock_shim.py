"""The clock shim: the small preloaded library through which clock faults move a process's wall clock.

Built from `chaos_clock.c` with the machine's C compiler into the cache, once per version of the
source (its hash names the directory), and written there only once complete. The environment that
a clock-faulted process runs with is made here too, so that the engines and the faults agree on it.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

from chaos.env.paths import chaos_home
from chaos.errors import EnvironmentFailure
from faults.clock import clock_file, create_offset_file

SOURCE = Path(__file__).with_name("chaos_clock.c")
CLOCK_DIR = "clock"
"""Under a run's directory, the offset file of each process a clock fault targets; under an
environment's, the broker's."""


def shim_library() -> Path:
    """The built shim (built now when missing): an environment failure names what is missing."""
    source = SOURCE.read_bytes()
    target = chaos_home() / "clock" / hashlib.sha256(source).hexdigest()[:12] / "libchaosclock.so"
    if target.exists():
        return target
    compiler = shutil.which("cc") or shutil.which("gcc")
    if compiler is None:
        raise EnvironmentFailure("a clock fault preloads a small C library built here, and no C compiler was "
                                 "found on PATH: install one (Debian: apt-get install gcc)")
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_suffix(f".{os.getpid()}.tmp")
    build = subprocess.run([compiler, "-shared", "-fPIC", "-O2", "-o", str(partial), str(SOURCE), "-ldl"],
                           capture_output=True, text=True, timeout=120)
    if build.returncode != 0:
        raise EnvironmentFailure(f"building the clock shim failed (exit {build.returncode})",
                                 (build.stdout + build.stderr).strip())
    os.replace(partial, target)
    return target


def clock_env(run_dir: Path, process: str) -> dict[str, str]:
    """What a clock-faulted process is started with: the shim preloaded, and its offset file, made
    true when it does not exist yet (a process restarted during a fault keeps the clock it had)."""
    return _preloaded(shim_library(), clock_file(run_dir / CLOCK_DIR, process))


def service_clock_env(workdir: Path, service: str) -> dict[str, str] | None:
    """The whole environment a service (the broker) starts with: the shim preloaded whenever it is
    built, on an offset file under the environment's directory that stays true until a clock fault
    on the service moves it (at 0 the shim only passes the time through). None without the shim:
    the service runs as it is, and a clock fault on it says it was not started with the shim."""
    try:
        library = shim_library()
    except EnvironmentFailure:
        return None
    return dict(os.environ, **_preloaded(library, clock_file(workdir / CLOCK_DIR, service)))


def _preloaded(library: Path, offsets: Path) -> dict[str, str]:
    if not offsets.exists():
        create_offset_file(offsets)
    preload = " ".join(filter(None, [str(library), os.environ.get("LD_PRELOAD", "")]))
    return {"LD_PRELOAD": preload, "CHAOS_CLOCK_FILE": str(offsets)}
