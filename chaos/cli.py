"""`python -m chaos`: run, replay, validate, certify, explore, shrink, and the environment commands.

Expected failures end with a message and their documented exit code (2 invalid experiment,
3 environment, 130 interrupted by Ctrl-C or SIGTERM), never with a traceback.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from pathlib import Path

from rich.console import Console
from rich.markup import escape

from chaos.errors import EXIT_OK, ChaosError, EnvironmentFailure, SpecError
from chaos.interrupt import EXIT_INTERRUPTED, interrupted_message, terminate

MAX_JOBS = 8
"""More lanes than this only wait on each other, and each starts an environment of its own."""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="chaos", description="Fault-injection testbed for data connectors.")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run experiments against real services (files, or directories of them)")
    run.add_argument("experiments", type=Path, nargs="+")
    replay = sub.add_parser("replay", help="run a recorded run again with its seed, workload and schedule")
    replay.add_argument("run_dir", type=Path)
    certify = sub.add_parser("certify", help="run the certification suite and compute the maturity labels")
    certify.add_argument("--row", action="append", dest="rows", metavar="ROW",
                         help="only this matrix row, e.g. kafka-transactional-to-parquet-2pc (repeatable)")
    certify.add_argument("--connector", metavar="KIND", action="append", dest="connectors",
                         help="certify a connector kind (a plug-in's, say): every row it joins, and its own mutants "
                              "(repeatable)")
    certify.add_argument("--engine", metavar="ENGINE", default=None,
                         help="certify a connector of a black-box engine (kafka-connect), named with --connector")
    certify.add_argument("--quick", action="store_true", help="every scenario once, at half the size (what CI runs)")
    certify.add_argument("--mutants", action="store_true",
                         help="also run the seeded-bug variants, which must all be caught, and report the kill rate")
    certify.add_argument("--jobs", type=_jobs, default=1, metavar="N",
                         help="run N cases at once, each on an environment of its own (default: 1)")
    certify.add_argument("--plan", action="store_true", dest="only_plan",
                         help="print which scenarios apply to which row, and why, and run nothing")
    explore = sub.add_parser("explore", help="run an experiment with a fresh draw of its nemesis each time, to find "
                                             "failing schedules")
    explore.add_argument("experiment", type=Path)
    explore.add_argument("--runs", type=int, default=None, help="how many draws (default: 10, or the --seeds range)")
    explore.add_argument("--budget", type=_duration, default=None, help="stop starting runs after this long, e.g. 30m")
    explore.add_argument("--until-fail", action="store_true", help="stop at the first failing run")
    explore.add_argument("--seeds", type=_seeds, default=None, metavar="A..B", help="the nemesis seeds to draw from")
    explore.add_argument("--repeat", type=int, default=None, metavar="N",
                         help="run one draw (the first seed) N times and count each invariant's failures")
    shrink = sub.add_parser("shrink", help="reduce a failing run to a minimal experiment that fails the same way")
    shrink.add_argument("run_dir", type=Path)
    shrink.add_argument("--budget", type=_duration, default=None, help="stop after this long, keeping the smallest "
                                                                       "failing experiment found, e.g. 30m")
    shrink.add_argument("--confirm", type=_confirm, default=(2, 3), metavar="K/N",
                        help="a candidate must fail the same way K of N times (default: 2/3)")
    for command in (run, replay, certify, explore, shrink):
        command.add_argument("--runs-dir", type=Path, default=Path("runs"),
                             help="where run directories go (default: runs/)")
        command.add_argument("--env", type=Path, default=None, dest="env_file",
                             help="attach to the environment in this state file (default: the shared one, if up)")
        command.add_argument("--private-env", action="store_true",
                             help="start an environment for this run only, even if a shared one is up")
        command.add_argument("--keep-env", action="store_true",
                             help="keep a private environment's data (Kafka's and PostgreSQL's) after the run")
    validate = sub.add_parser("validate", help="check experiment files without running them")
    validate.add_argument("experiments", type=Path, nargs="+")
    validate.add_argument("--show", action="store_true",
                          help="also print the effective guarantee, the resolved schedule and the invariants checked")
    sub.add_parser("matrix", help="print the delivery-guarantee matrix")
    sub.add_parser("connectors", help="list every connector kind (built in and plug-ins) and the rows it joins")
    env = sub.add_parser("env", help="provision and manage the shared environment")
    env.add_argument("action", choices=["install", "up", "down", "status", "images", "compose"],
                     help="images: build the Docker backend's images here, with no registry (starting dockerd "
                     "for the build if none runs); compose: write the Docker backend's environment as a Compose "
                     "project (to --out) that `chaos run --env OUT/state.json` attaches to")
    env.add_argument("--brokers", type=int, choices=[1, 3], default=1,
                     help="with up: one broker (default), or a cluster of three nodes for cluster experiments")
    env.add_argument("--controllers", choices=["combined", "separate"], default="combined",
                     help="with up --brokers 3: the controllers inside the nodes (default) or in processes of their own")
    env.add_argument("--backend", choices=["native", "docker"], default="native",
                     help="with up: the services as processes here (default), or as Docker containers")
    env.add_argument("--kafka-image", metavar="IMAGE",
                     help="with up --backend docker: Kafka's image (default: $CHAOS_KAFKA_IMAGE, else apache/kafka)")
    env.add_argument("--out", type=Path, default=Path("compose"),
                     help="with compose: the folder to write (default: compose/)")
    env.add_argument("--toxiproxy-image", metavar="IMAGE", help="with up --backend docker: Toxiproxy's image "
                     "(default: $CHAOS_TOXIPROXY_IMAGE, else ghcr.io/shopify/toxiproxy)")
    return parser


def _duration(text: str) -> float:
    from faults.fields import parse_duration

    try:
        return parse_duration(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _seeds(text: str) -> list[int]:
    from chaos.explore.explore import parse_seeds

    try:
        return parse_seeds(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(e.problems[0]) from None


def _confirm(text: str) -> tuple[int, int]:
    from chaos.explore.shrink import parse_confirm

    try:
        return parse_confirm(text)
    except SpecError as e:
        raise argparse.ArgumentTypeError(e.problems[0]) from None


def _jobs(text: str) -> int:
    """How many certification cases run at once: each needs an environment (a broker, about 1 GB)."""
    if not text.isdigit() or not 1 <= int(text) <= MAX_JOBS:
        raise argparse.ArgumentTypeError(f"expected a whole number from 1 to {MAX_JOBS}, got {text!r}")
    return int(text)


def _warn_about_plugins(errors: Console, command: str) -> None:
    """One line per plug-in left out: the other kinds keep working (`chaos connectors` lists them too)."""
    from drivers.connectors import PLUGIN_PROBLEMS

    if command != "connectors":
        for problem in PLUGIN_PROBLEMS:
            errors.print(f"[yellow]warning:[/] {escape(str(problem))}; left out", highlight=False)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
    errors = Console(stderr=True, soft_wrap=True)
    signal.signal(signal.SIGTERM, terminate)
    logging.getLogger("chaos").addHandler(logging.NullHandler())
    logging.getLogger("chaos").setLevel(logging.INFO)
    _warn_about_plugins(errors, args.command)
    try:
        if args.command == "validate":
            from chaos.commands.run import validate

            return validate(args.experiments, args.show, console, errors)
        if args.command == "connectors":
            from chaos.commands.connectors import print_connectors

            print_connectors(console)
            return EXIT_OK
        if args.command == "matrix":
            from chaos.commands.matrix import print_matrix

            print_matrix(console)
            return EXIT_OK
        if args.command == "replay":
            from chaos.runner import replay_run

            return replay_run(args.run_dir, args.runs_dir, args.env_file, args.private_env, console,
                              args.keep_env).exit_code
        if args.command == "certify" and args.engine is not None:
            from chaos.certification.black_box import certify_black_box

            return certify_black_box(args.engine, args.connectors, args.quick, args.runs_dir, args.env_file,
                                     args.private_env, console, args.keep_env, args.only_plan)
        if args.command == "certify":
            from chaos.certification.cli import certify

            return certify(args.rows, args.quick, args.mutants, args.runs_dir, args.env_file, args.private_env, console,
                           args.only_plan, args.keep_env, args.connectors, args.jobs)
        if args.command == "explore":
            from chaos.explore.explore import explore

            return explore(args.experiment, args.runs, args.budget, args.until_fail, args.seeds, args.repeat,
                           args.runs_dir, args.env_file, args.private_env, args.keep_env, console)
        if args.command == "shrink":
            from chaos.explore.shrink import shrink_run

            return shrink_run(args.run_dir, args.budget, args.confirm, args.runs_dir, args.env_file,
                              args.private_env, args.keep_env, console)
        if args.command == "run":
            from chaos.commands.run import run_all

            return run_all(args.experiments, args.runs_dir, args.env_file, args.private_env, args.keep_env, console,
                           errors)
        from chaos.commands.env import env_command
        from chaos.experiment.shape import KafkaShape

        return env_command(args.action, console,
                           KafkaShape(args.brokers, args.brokers > 1 and args.controllers == "separate", args.backend),
                           {"kafka": args.kafka_image, "toxiproxy": args.toxiproxy_image}, args.out)
    except SpecError as e:
        from chaos.commands.run import print_problems

        print_problems(errors, e)
        return e.exit_code
    except ChaosError as e:
        errors.print(f"[bold red]error:[/] {escape(str(e))}", highlight=False)
        if isinstance(e, EnvironmentFailure) and e.log_tail:
            errors.print("[dim]--- log tail ---[/]")
            errors.print(e.log_tail, markup=False, highlight=False)
        return e.exit_code
    except KeyboardInterrupt as e:
        errors.print(f"[yellow]{escape(interrupted_message(e))}[/]", highlight=False)
        return EXIT_INTERRUPTED

