"""A throwaway PostgreSQL server: the off-node checkpoint store of the `distributed-durable` profile.

The server is a cluster of its own in the environment's work directory, listening on 127.0.0.1 only,
so nothing else on the machine is touched and the whole cluster goes away with the directory.

PostgreSQL refuses to run as root. When the harness is root, the server runs in a user namespace
(`unshare --user`) in which outside root is mapped to the `postgres` user. That is used instead of
`runuser`/`setpriv` for three reasons:
- `unshare` without `--fork` execs in place, so the process the harness spawned *is* the postmaster:
  it keeps the process group that `ManagedProcess.stop()` signals (`runuser` forks a child and stays
  in between, and would forward SIGTERM but not a SIGKILL of the group's leader);
- PR_SET_PDEATHSIG survives (a real change of uid clears it, so a killed harness would orphan it);
- outside the namespace the server's files and accesses are still root's, so it can use a work
  directory under a 0700 parent (`/root/.cache`, pytest's temporary directories) without chown or
  opening up the parents' permissions.

Stopping needs care too, whoever the user is: every child of the postmaster calls setsid(), so a
signal to the postmaster's process group reaches the postmaster alone, and SIGTERM asks for a
*smart* shutdown that waits for every client to disconnect. `PostgresServer.stop` and `stop_server`
therefore ask for a fast shutdown (SIGINT), and SIGKILL the children by pid along with the group.

The service faults kill the server (`kill_server`: SIGKILL of the postmaster and every child) or
shut it down cleanly (`terminate_server`: the fast shutdown), and start it again on the same cluster
and port (`start_postgres`). A killed postmaster leaves `postmaster.pid` behind, and PostgreSQL
trusts it as long as kill(pid, 0) succeeds, which it does for a zombie that its parent (the
process that started the environment, not necessarily this one) has not reaped yet.
`clear_stale_locks` removes such a lock first.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Callable

from chaos.env.launch import Launcher, ProcessLauncher, Service
from chaos.env.processes import ManagedProcess, ProcessRef, pid_running, process_start_time, signal_group
from chaos.errors import EnvironmentFailure

if TYPE_CHECKING:
    import psycopg

PG_ROOT = Path("/usr/lib/postgresql")
USER = "chaos"
DATABASE = "chaos"
_APT_TIMEOUT = 600.0
_READY_TIMEOUT = 60.0
TERMINATE_TIMEOUT = 30.0
"""How long a fault's clean (fast) shutdown may take before the server is SIGKILLed."""
_ZOMBIE_GRACE = 5.0
"""How long a restart waits for a dead postmaster's parent to reap it before removing its lock file."""
_MAX_SOCKET_PATH = 100  # sun_path holds 107 bytes; PostgreSQL refuses longer socket paths
IMAGE_BIN = Path("/usr/lib/postgresql/15/bin")
"""Where the server's programs are in its image (the official `postgres:15` and our local one alike);
in a container they run as the image's `postgres` user, and the image's stop signal is SIGINT."""


def find_bin_dir() -> Path | None:
    """The newest installed major version's bin directory that has both initdb and postgres."""
    candidates = [d / "bin" for d in PG_ROOT.glob("*") if (d / "bin" / "initdb").is_file()
                  and (d / "bin" / "postgres").is_file()]
    return max(candidates, key=lambda b: _version_key(b.parent.name), default=None)


def _version_key(name: str) -> tuple[int, ...]:
    return tuple(int(n) for n in re.findall(r"\d+", name)) or (0,)


def ensure_postgres_installed() -> Path:
    """The PostgreSQL bin directory, installing Debian's `postgresql` package if there is none."""
    found = find_bin_dir()
    if found is not None:
        return found
    problem = _apt_install() or f"the package left no */bin/initdb and */bin/postgres under {PG_ROOT}"
    found = find_bin_dir()
    if found is None:
        raise EnvironmentFailure(f"PostgreSQL is not installed and could not be installed: {problem}")
    return found


def _apt_install() -> str:
    """Install the package (updating the lists once if needed); returns what went wrong, if anything."""
    if shutil.which("apt-get") is None:
        return "apt-get is not available; install PostgreSQL (initdb and postgres) by hand"
    _no_main_cluster()
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install = ["apt-get", "install", "-y", "--no-install-recommends", "postgresql"]
    result = ""
    for step in ([install], [["apt-get", "update"], install]):
        try:
            for argv in step:
                proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=_APT_TIMEOUT,
                                      stdin=subprocess.DEVNULL)
                if proc.returncode != 0:
                    raise RuntimeError(f"`{' '.join(argv)}` exited {proc.returncode}: {proc.stderr.strip()[-500:]}")
            return ""
        except (RuntimeError, OSError) as e:
            result = str(e)
        except subprocess.TimeoutExpired as e:
            return f"`{' '.join(e.cmd)}` did not finish within {_APT_TIMEOUT:.0f}s"
    return result


def _no_main_cluster() -> None:
    """Stop the package from creating and starting a system-wide cluster on port 5432: we never use it."""
    conf = Path("/etc/postgresql-common/createcluster.d/chaos.conf")
    try:
        conf.parent.mkdir(parents=True, exist_ok=True)
        if not conf.exists():
            conf.write_text("# written by chaos: clusters are per environment\ncreate_main_cluster = false\n")
    except OSError:
        pass  # not root: the install will fail anyway and say why


def _as_server_user() -> list[str]:
    """The argv prefix that makes initdb and postgres run as a non-root user (see the module docstring)."""
    if os.geteuid() != 0:
        return []
    try:
        entry = pwd.getpwnam("postgres")
    except KeyError:
        subprocess.run(["useradd", "--system", "--user-group", "--no-create-home", "postgres"],
                       capture_output=True, timeout=60, check=False)
        try:
            entry = pwd.getpwnam("postgres")
        except KeyError as e:
            raise EnvironmentFailure("PostgreSQL cannot run as root and the `postgres` user could not be created") from e
    unshare = shutil.which("unshare")
    if unshare is None:
        raise EnvironmentFailure("PostgreSQL cannot run as root and `unshare` (util-linux) is missing")
    return [unshare, "--user", f"--map-user={entry.pw_uid}", f"--map-group={entry.pw_gid}", "--"]


def init_cluster(bin_dir: Path, data: Path, prefix: list[str], launcher: Launcher | None = None) -> None:
    """initdb into a side directory and rename it into place, so `data` exists only when complete."""
    staging = data.with_name(data.name + ".initdb")
    shutil.rmtree(staging, ignore_errors=True)
    argv = prefix + [str(bin_dir / "initdb"), "-D", str(staging), "-U", USER, "--auth=trust",
                     "--no-sync", "--encoding=UTF8", "--locale=C"]
    if launcher is not None and launcher.backend == "docker":
        _init_in_container(launcher, data, staging, argv)
        return
    try:
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=120, stdin=subprocess.DEVNULL,
                              env={**os.environ, "LC_ALL": "C"})
    except subprocess.TimeoutExpired as e:
        raise EnvironmentFailure("initdb did not finish within 120s") from e
    if proc.returncode != 0:
        hint = " (as root this runs in a user namespace: is `unshare --user` allowed here?)" if prefix else ""
        raise EnvironmentFailure(f"initdb failed with exit code {proc.returncode}{hint}",
                                 (proc.stdout + proc.stderr)[-3000:])
    staging.rename(data)


def _init_in_container(launcher: Launcher, data: Path, staging: Path, argv: list[str]) -> None:
    """initdb as the image's `postgres` user, into a directory made its own (the environment's
    directory only lets it through: it is root's)."""
    ids = re.match(r"uid=(\d+)\S* gid=(\d+)", launcher.run("postgres", ["id"], timeout=120))  # run as `postgres`
    if ids is None:
        raise EnvironmentFailure("the PostgreSQL image's `id` did not say the server user's uid and gid")
    staging.mkdir(parents=True)
    os.chown(staging, int(ids[1]), int(ids[2]))
    workdir = data.parent
    workdir.chmod(workdir.stat().st_mode | 0o011)  # search permission only, for the server's user
    launcher.run("postgres", argv, timeout=120)
    staging.rename(data)


class PostgresServer(ManagedProcess):
    """The postmaster: stopped by a fast shutdown, and its children (group leaders of their own) with it."""

    def stop(self, grace: float = 10.0) -> int | None:
        if grace > 0 and self.poll() is None:
            self.signal(signal.SIGINT)  # fast shutdown: end sessions, checkpoint, exit
            self.signal(signal.SIGCONT)
            try:
                self.popen.wait(grace)
            except subprocess.TimeoutExpired:
                pass
        kids = children(self.pid) if self.poll() is None else []
        code = super().stop(grace=0)
        _kill_all(kids)
        return code


def stop_server(ref: ProcessRef, grace: float = 15.0) -> None:
    """Stop a postmaster this process did not start (a detached environment found via its state file)."""
    if not ref.alive():
        return
    _signal(ref.pid, signal.SIGINT)
    _signal(ref.pid, signal.SIGCONT)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and not _gone(ref):
        time.sleep(0.05)
    kids = [] if _gone(ref) else children(ref.pid)
    ref.stop(grace=0)
    _kill_all(kids)


def kill_server(ref: ProcessRef, timeout: float = 10.0) -> None:
    """SIGKILL the postmaster and every process under it, as a crash of the node would.

    The postmaster is stopped first, so it forks nothing while its children are listed; a child
    that leads a session of its own is then killed by pid, since a group signal would miss it.
    """
    if not ref.running():
        raise EnvironmentFailure(f"PostgreSQL (pid {ref.pid}) is not running")
    _signal(ref.pid, signal.SIGSTOP)
    tree = descendants(ref.pid)
    signal_group(ref.pid, signal.SIGKILL)
    _kill_all(tree, timeout)
    if not ref.wait_gone(timeout) or not all(_gone(r) for r in tree):
        raise EnvironmentFailure(f"PostgreSQL (pid {ref.pid}) or a backend survived SIGKILL for {timeout:.0f}s")


def terminate_server(ref: ProcessRef, timeout: float = TERMINATE_TIMEOUT) -> bool:
    """A clean shutdown: PostgreSQL's fast shutdown (SIGINT), which ends the sessions, writes a
    checkpoint and exits. (SIGTERM, a *smart* shutdown, would wait for every client to leave, and
    the coordinator's store never does.) Returns whether it finished within `timeout`; a server
    still up then is SIGKILLed with its children."""
    if not ref.running():
        raise EnvironmentFailure(f"PostgreSQL (pid {ref.pid}) is not running")
    for child in children(ref.pid):
        _signal(child.pid, signal.SIGCONT)  # a paused backend could not end its session
    _signal(ref.pid, signal.SIGINT)
    _signal(ref.pid, signal.SIGCONT)
    if ref.wait_gone(timeout):
        return True
    if ref.running():
        kill_server(ref)
    return False


def descendants(pid: int) -> list[ProcessRef]:
    """Every live process below `pid`, children first."""
    found: list[ProcessRef] = []
    frontier = [pid]
    while frontier:
        kids = [c for p in frontier for c in children(p)]
        found += kids
        frontier = [c.pid for c in kids]
    return found


def clear_stale_locks(data: Path, sockets: Path | None, zombie_grace: float = _ZOMBIE_GRACE) -> list[Path]:
    """Remove `postmaster.pid` (and the socket lock files) left by a postmaster that is dead.

    A lock naming a pid that no longer exists is left alone: PostgreSQL itself sees that it is
    stale (and cleans up the old shared memory). One naming a zombie, or a live process that is not
    a postgres on this data directory (its pid was reused), would make PostgreSQL refuse to start.
    A zombie is given `zombie_grace` seconds to be reaped first. Returns the files removed.
    """
    locks = [data / "postmaster.pid"]
    if sockets is not None and sockets.is_dir():
        locks += sorted(sockets.glob(".s.PGSQL.*.lock"))
    removed = []
    for lock in locks:
        pid = _lock_pid(lock)
        if pid is None or pid == os.getpid():
            continue
        deadline = time.monotonic() + zombie_grace
        while process_start_time(pid) is not None and not pid_running(pid) and time.monotonic() < deadline:
            time.sleep(0.05)  # a zombie: its parent may reap it any moment
        if process_start_time(pid) is None:
            continue  # gone: PostgreSQL handles this case itself
        if pid_running(pid) and _is_postmaster_of(pid, data):
            continue  # really running: PostgreSQL will refuse, rightly
        lock.unlink(missing_ok=True)
        removed.append(lock)
    return removed


def _lock_pid(lock: Path) -> int | None:
    try:
        first = lock.read_text().split("\n", 1)[0].strip()
    except OSError:
        return None
    return int(first) if first.lstrip("-").isdigit() else None


def _is_postmaster_of(pid: int, data: Path) -> bool:
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return any(Path(a.decode(errors="replace")).name == "postgres" for a in argv) and str(data).encode() in argv


def children(pid: int) -> list[ProcessRef]:
    """The live children of `pid` (the postmaster's backends lead sessions of their own)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(ProcessRef(int(entry.name), int(fields[19])))
    return found


def _kill_all(refs: list[ProcessRef], timeout: float = 5.0) -> None:
    """SIGKILL each process that is still the one we saw, and wait (bounded) until all are gone."""
    for ref in refs:
        if ref.alive():
            _signal(ref.pid, signal.SIGKILL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and not all(_gone(r) for r in refs):
        time.sleep(0.02)


def _gone(ref: ProcessRef) -> bool:
    if process_start_time(ref.pid) != ref.start_time:
        return True
    try:
        return Path(f"/proc/{ref.pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def server_settings() -> list[tuple[str, str]]:
    """The server's settings on every backend (and in `compose/`)."""
    return [
        ("listen_addresses", "127.0.0.1"), ("fsync", "on"), ("max_connections", "50"),
        # Two-phase sinks (PREPARE TRANSACTION), such as the PostgreSQL plug-in's.
        ("max_prepared_transactions", "32"),
        # DSM segments in the data directory, not /dev/shm, so a SIGKILLed server leaks nothing outside it.
        ("dynamic_shared_memory_type", "mmap"),
        # A client partitioned during its handshake must not hold a connection slot for long.
        ("authentication_timeout", "10s"),
    ]


def start_postgres(workdir: Path, logs: Path, port: int, detached: bool,
                   spawn: Callable[[Callable[[], Service]], Service] | None = None,
                   on_spawn: Callable[[Service], None] | None = None,
                   launcher: Launcher = ProcessLauncher()) -> Service:
    """Start the server on 127.0.0.1:`port`; returns once database `chaos` accepts connections.

    The cluster is `workdir/pg-data`, created on first start. A later start in the same work
    directory reuses it (after a kill, PostgreSQL replays its WAL), as a restarted store would,
    once the dead server's stale lock files are gone. `spawn` runs the process factory (on the
    thread that must own the child), and `on_spawn` sees the process before the wait for it.
    On the Docker backend (`launcher`), the server is a container of its image on the same data.
    """
    _psycopg()  # fail before starting anything if the client is missing
    in_container = launcher.backend == "docker"
    bin_dir = IMAGE_BIN if in_container else ensure_postgres_installed()
    prefix = [] if in_container else _as_server_user()
    data = workdir / "pg-data"
    if not data.exists():
        init_cluster(bin_dir, data, prefix, launcher)
    sockets = workdir / "pg-socket"
    sockets.mkdir(parents=True, exist_ok=True)
    # A too-long socket path would stop the server; TCP on 127.0.0.1 is all the testbed uses (and
    # all a container's server, whose user may not write here, listens on).
    fits = len(f"{sockets}/.s.PGSQL.{port}.lock") <= _MAX_SOCKET_PATH
    socket_dir = str(sockets) if fits and not in_container else ""
    argv = prefix + [str(bin_dir / "postgres"), "-D", str(data), "-k", socket_dir, "-p", str(port),
                     *(arg for name, value in server_settings() for arg in ("-c", f"{name}={value}"))]
    removed = clear_stale_locks(data, sockets)
    if removed:
        logging.getLogger("chaos.env").info("removed stale PostgreSQL lock files: %s", ", ".join(map(str, removed)))

    def factory() -> Service:
        if in_container:
            return launcher.spawn("postgres", argv, logs / "postgres.log", detached, {"LC_ALL": "C"})
        return PostgresServer("postgres", argv, logs / "postgres.log", detached=detached,
                              env={**os.environ, "LC_ALL": "C"})

    server = spawn(factory) if spawn is not None else factory()
    if on_spawn is not None:
        on_spawn(server)
    try:
        _wait_ready(server, port)
        _create_database(port)
    except BaseException:
        server.stop()
        raise
    return server


def _psycopg() -> ModuleType:
    """psycopg, imported only when PostgreSQL is used, so the rest of the harness does not need it."""
    try:
        import psycopg
    except ImportError as e:
        raise EnvironmentFailure(f"psycopg is not installed ({e}): pip install 'psycopg[binary]'") from e
    return psycopg


def connect(port: int, dbname: str = DATABASE, timeout: int = 2) -> "psycopg.Connection":
    return _psycopg().connect(host="127.0.0.1", port=port, user=USER, dbname=dbname,
                              connect_timeout=timeout, autocommit=True)


def _wait_ready(server: Service, port: int) -> None:
    deadline = time.monotonic() + _READY_TIMEOUT
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise EnvironmentFailure(f"PostgreSQL exited with code {server.poll()} during start-up", server.log_tail())
        try:
            with connect(port, "postgres") as conn:
                conn.execute("SELECT 1")
                return
        except _psycopg().OperationalError:
            time.sleep(0.2)
    raise EnvironmentFailure(f"PostgreSQL did not accept connections within {_READY_TIMEOUT:.0f}s",
                             server.log_tail())


def _create_database(port: int) -> None:
    with connect(port, "postgres", timeout=10) as conn:
        if conn.execute("SELECT 1 FROM pg_database WHERE datname = %s", (DATABASE,)).fetchone() is None:
            conn.execute(f"CREATE DATABASE {DATABASE}")


def health_problem(port: int) -> str | None:
    """None when the server answers a query on its direct port; otherwise why not."""
    try:
        with connect(port, timeout=5) as conn:
            conn.execute("SELECT 1")
        return None
    except _psycopg().Error as e:
        return f"postgres does not answer on 127.0.0.1:{port}: {e}".strip()
