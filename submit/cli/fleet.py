"""fleet, and local up/status/down: the workers, local or deployed, and the
long-running embedded AWS."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from submit import tracking
from submit.cli import render
from submit.cli.options import (
    add_job_modules,
    add_json,
    add_target,
    load_job_modules,
    positive,
    seconds,
)
from submit.embedded_process import listen_on
from submit.errors import EXIT_FAILED, EXIT_OK, UsageError
from submit.fleet_status import deployed_services, queue_depths
from submit.target import Target, local_target, resolve
from worker.ledger.admin import Admin


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from submit.local import LOCAL_IDLE_S

    fleet = sub.add_parser("fleet", help="queue depths and workers")
    add_target(fleet)
    add_json(fleet)
    fleet.set_defaults(run=cmd_fleet)

    local = sub.add_parser(
        "local",
        help="a long-running embedded AWS with a local fleet",
        description=(
            "Start, inspect or stop an embedded AWS (moto's server on 127.0.0.1) with a "
            "local fleet of worker processes that scales on queue depth like the deployed "
            "one. While it runs, the other commands use it."
        ),
    )
    local_sub = local.add_subparsers(dest="local_command", required=True, metavar="ACTION")
    up = local_sub.add_parser("up", help="start it in the background")
    up.add_argument(
        "--max-workers",
        type=positive,
        default=os.cpu_count() or 2,
        metavar="N",
        help="most map workers at once (default: the CPU count)",
    )
    up.add_argument(
        "--port", type=int, default=0, metavar="P", help="port on 127.0.0.1 (default: a free one)"
    )
    up.add_argument(
        "--idle-seconds",
        type=seconds,
        default=LOCAL_IDLE_S,
        metavar="S",
        help=f"scale a pool to zero after S idle seconds (default {LOCAL_IDLE_S:g})",
    )
    add_job_modules(up)
    up.set_defaults(run=cmd_local_up)
    lstatus = local_sub.add_parser("status", help="queues, workers and recent jobs")
    add_json(lstatus)
    lstatus.set_defaults(run=cmd_local_status)
    ldown = local_sub.add_parser("down", help="stop workers gracefully, then the embedded AWS")
    ldown.set_defaults(run=cmd_local_down)


def _fleet_view(target: Target) -> dict[str, Any]:
    from submit.local import read_fleet_status

    view: dict[str, Any] = {
        "target": target.description,
        "queues": queue_depths(target.clients.sqs, target.resources),
    }
    if target.local:
        view["workers"] = read_fleet_status() or {}
    else:
        view["services"] = deployed_services(target.clients, target.resources)
    return view


def _print_fleet(view: dict[str, Any]) -> None:
    print(view["target"])
    render.table(
        [[q, d["visible"], d["in_flight"]] for q, d in view["queues"].items()],
        ["queue", "visible", "in flight"],
    )
    if "workers" in view:
        render.table(
            [
                [role, w["workers"], w["peak"], w["max"], render.timeline_text(w["timeline"][-6:])]
                for role, w in view["workers"].items()
            ],
            ["pool", "workers", "peak", "max", "recent changes"],
        )
        for role, w in view["workers"].items():
            if w.get("broken"):
                print(f"{role} pool broken: {w['broken']}")
    if "services" in view:
        render.table(
            [
                [role, s["desired"], s["running"], s["pending"]]
                for role, s in view["services"].items()
            ],
            ["service", "desired", "running", "pending"],
        )


def cmd_fleet(args: argparse.Namespace) -> int:
    view = _fleet_view(resolve(args.stack))
    if args.json:
        render.print_json(view)
    else:
        _print_fleet(view)
    return EXIT_OK


def check_port_free(port: int) -> None:
    """Refuse a --port out of range or in use here, before the daemon is
    started (it would fail in the background, its log saying why)."""
    if not 0 < port < 1 << 16:
        raise UsageError(f"--port {port}: a port is from 1 to 65535 (or 0 for a free one)")
    try:
        listen_on(port).close()
    except OSError as e:
        raise UsageError(
            f"--port {port}: 127.0.0.1:{port} is not free ({e.strerror or e}); "
            "choose another, or leave --port out for a free one"
        ) from None


def cmd_local_up(args: argparse.Namespace) -> int:
    from submit.local import LocalOptions, up

    modules = load_job_modules(args.job_modules)
    if args.port:
        check_port_free(args.port)
    state = up(
        LocalOptions(
            port=args.port,
            max_workers=args.max_workers,
            idle_s=args.idle_seconds,
            job_modules=tuple(modules),
        )
    )
    print(
        f"embedded AWS running on {state.endpoint_url} (pid {state.pid}), "
        f"fleet of up to {state.max_workers} map workers"
    )
    print("submit with `python -m submit run INPUT --job wordcount --wait`;")
    print("stop with `python -m submit local down`")
    return EXIT_OK


def cmd_local_status(args: argparse.Namespace) -> int:
    from submit.local import running_state

    state = running_state()
    if state is None:
        if args.json:
            render.print_json({"running": False})
        else:
            print("the embedded AWS is not running (`python -m submit local up` starts it)")
        return EXIT_FAILED
    target = local_target(state.endpoint_url, state.resources)
    view = _fleet_view(target)
    view["running"] = True
    view["pid"] = state.pid
    view["jobs"] = tracking.list_jobs(target.clients, target.resources, 10)
    if args.json:
        render.print_json(view)
        return EXIT_OK
    print(f"running, pid {state.pid}")
    _print_fleet(view)
    if view["jobs"]:
        render.table(
            [
                [r["job_id"], r["job"], r["state"], f"{r['done']}/{r['expected']}"]
                for r in view["jobs"]
            ],
            ["job", "kind", "state", "chunks"],
        )
    return EXIT_OK


# The most jobs `local down` counts.
LIST_LIMIT = 1000


def _say_what_goes() -> None:
    """The embedded AWS keeps its jobs in memory: say what stopping it ends.
    Asked once, briefly: an embedded AWS that does not answer is stopped
    all the same, without a word about its jobs."""
    from submit.embedded import local_session
    from submit.local import LOCAL_STOP_TIMEOUT_S, running_state

    state = running_state()
    if state is None:
        return
    once = Config(
        connect_timeout=2, read_timeout=5, retries={"mode": "standard", "max_attempts": 1}
    )
    dynamodb = local_session().client("dynamodb", endpoint_url=state.endpoint_url, config=once)
    try:
        jobs = Admin(dynamodb=dynamodb, table=state.resources.table).list_jobs(LIST_LIMIT)
    except (BotoCoreError, ClientError):
        return
    unfinished = [j.job_id for j in jobs if not j.state.terminal]
    if unfinished:
        more = ", ..." if len(unfinished) > 5 else ""
        print(
            f"local down ends {len(unfinished)} running job(s): {', '.join(unfinished[:5])}{more}",
            file=sys.stderr,
        )
    if jobs:
        print(
            f"the embedded AWS keeps its jobs ({len(jobs)}), their results and dead letters in "
            f"memory: they go with it; stopping its workers (up to {LOCAL_STOP_TIMEOUT_S:.0f} s "
            "for chunks in hand)",
            file=sys.stderr,
        )


def cmd_local_down(args: argparse.Namespace) -> int:
    from submit.local import down

    _say_what_goes()
    state = down()
    if state is None:
        print("the embedded AWS was not running")
    else:
        print(f"stopped the embedded AWS (pid {state.pid}) and its workers")
    return EXIT_OK
