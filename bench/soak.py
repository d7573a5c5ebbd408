"""False alarms under load: `chaos certify --quick` run K times on a busy machine.

Why: a certification tool that blames a clean connector for its own trouble (a port taken, a
process that could not start, a slow machine) loses the trust it exists for. Every connector in
the suite is clean, so every failed case of this soak is a false alarm, and the goal is none.

Beside the suites run two loads:
- `stress-ng` (Debian's package) keeps the CPUs busy;
- a connection churner keeps a pool of long-lived loopback connections and replaces the oldest
  ones all the time, so that ephemeral ports all over the kernel's range are held by outgoing
  connections: exactly how the port race took a coordinator's port.

Each suite runs as `python -m chaos certify --quick --private-env [--jobs N]`, as a user would. Its failed
cases and environment errors are recorded with their causes in bench/results/soak.json.

    .venv/bin/python -m bench.soak [--suites 5] [--cpu-load 50] [--connections 2000] [--churn 200] [--jobs 1]
"""

from __future__ import annotations

import argparse
import collections
import json
import resource
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from bench.common import REPO, console, show, write_results
from chaos.env.processes import ManagedProcess


def churn(connections: int, per_second: float, stop: threading.Event) -> None:
    """Hold `connections` loopback connections, replacing the oldest `per_second` times a second."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * connections + 256)), hard))
    with socket.create_server(("127.0.0.1", 0), backlog=1024) as server:
        accepted: collections.deque[socket.socket] = collections.deque()
        held: collections.deque[socket.socket] = collections.deque()

        def accept() -> None:
            server.settimeout(0.5)
            while not stop.is_set():
                try:
                    accepted.append(server.accept()[0])
                except OSError:
                    continue
                while len(accepted) > connections:
                    accepted.popleft().close()

        acceptor = threading.Thread(target=accept, daemon=True)
        acceptor.start()
        interval = 1.0 / per_second
        while not stop.wait(interval):
            try:
                held.append(socket.create_connection(server.getsockname(), timeout=2))
            except OSError:
                continue
            while len(held) > connections:
                held.popleft().close()
        for conn in [*held, *accepted]:
            conn.close()
        acceptor.join(2)


def run_suite(index: int, runs_dir: Path, jobs: int) -> dict[str, Any]:
    """One `chaos certify --quick` in a process of its own; its outcome and every non-passing case."""
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "chaos", "certify", "--quick", "--private-env", "--jobs", str(jobs),
                           "--runs-dir", str(runs_dir)], cwd=REPO, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL, timeout=3 * 3600)
    seconds = time.monotonic() - started
    reports = sorted(runs_dir.glob("certification-*/certification.json"))
    if not reports:
        return {"suite": index, "exit_code": proc.returncode, "wall_s": round(seconds, 1), "cases": 0,
                "false_alarms": [], "environment_errors": [f"no report: {proc.stderr[-2000:]}"]}
    report = json.loads(reports[-1].read_text())
    runs = [(row["row"], s["scenario"], run) for row in report["rows"] for s in row["scenarios"] for run in s["runs"]]
    alarms = [{"case": f"{row}/{scenario}", "failed": run["failed"], "run_dir": run["run_dir"]}
              for row, scenario, run in runs if run["status"] == "fail"]
    return {"suite": index, "exit_code": proc.returncode, "wall_s": round(seconds, 1), "cases": len(runs),
            "false_alarms": alarms, "environment_errors": report.get("environment_errors", []),
            "report": str(reports[-1].parent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--suites", type=int, default=5)
    parser.add_argument("--cpu-load", type=int, default=50, help="stress-ng's load on every CPU, in percent")
    parser.add_argument("--connections", type=int, default=2000, help="loopback connections held at once")
    parser.add_argument("--churn", type=float, default=200.0, help="connections replaced per second")
    parser.add_argument("--jobs", type=int, default=1, help="cases each suite runs at once (`chaos certify --jobs`)")
    args = parser.parse_args()
    stress_ng = shutil.which("stress-ng")
    if stress_ng is None:
        raise SystemExit("stress-ng is missing: `apt-get install stress-ng` (make soak does it)")
    workdir = Path(tempfile.mkdtemp(prefix="chaos-soak-"))
    stop = threading.Event()
    churner = threading.Thread(target=churn, args=(args.connections, args.churn, stop), daemon=True)
    stress = ManagedProcess("stress-ng", [stress_ng, "--cpu", "0", "--cpu-load", str(args.cpu_load)],
                            workdir / "stress-ng.log")
    churner.start()
    suites = []
    try:
        for index in range(1, args.suites + 1):
            console.print(f"suite {index} of {args.suites} ...")
            suites.append(outcome := run_suite(index, workdir / f"suite-{index}", args.jobs))
            console.print(f"  exit {outcome['exit_code']}, {outcome['cases']} cases in {outcome['wall_s']} s, "
                          f"{len(outcome['false_alarms'])} false alarms, "
                          f"{len(outcome['environment_errors'])} environment errors")
    finally:
        stop.set()
        stress.stop()
        churner.join(10)
    show("Quick certification under load", ["suite", "exit", "cases", "wall (s)", "false alarms", "env errors"],
         [(s["suite"], s["exit_code"], s["cases"], s["wall_s"], len(s["false_alarms"]), len(s["environment_errors"]))
          for s in suites])
    write_results("soak", {
        "load": {"stress_ng_cpu_load_percent": args.cpu_load, "connections_held": args.connections,
                 "connections_replaced_per_s": args.churn},
        "jobs": args.jobs,
        "suites": suites,
        "false_alarms": sum(len(s["false_alarms"]) for s in suites),
        "environment_errors": sum(len(s["environment_errors"]) for s in suites),
        "runs_dir": str(workdir),
    })


if __name__ == "__main__":
    main()
