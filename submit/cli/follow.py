"""status, wait, result and jobs: following a job and fetching its result."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from pathlib import Path
from typing import Any

from submit import tracking
from submit.cli import render
from submit.cli.options import (
    add_job_modules,
    add_json,
    add_target,
    check_output,
    load_job_modules,
    positive,
    seconds,
)
from submit.errors import EXIT_FAILED, EXIT_OK, OperationalError
from submit.lost_work import LostWorkWatch, record_lost_work
from submit.submission import Submitted
from submit.target import Target, fleet_job_modules, resolve
from submit.tracking import JobStatus
from worker.jobs import job_class, job_names

LOST_WORK = (
    "It first records work lost with its workers (messages SQS moved to a "
    "dead-letter queue by itself) as failed chunks, which can fail the job."
)


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    status = sub.add_parser(
        "status",
        help="a job's state, progress and failures",
        description=f"A job's state, chunks done, failed chunks and their last errors. {LOST_WORK}",
    )
    status.add_argument("job_id", metavar="JOB")
    add_target(status)
    add_json(status)
    status.set_defaults(run=cmd_status)

    wait = sub.add_parser(
        "wait",
        help="follow a job until it ends; exit 1 if it fails",
        description=(
            "Show a job's progress until it ends. Exit code 0 if it succeeded, 1 if it "
            "failed, was cancelled, or is still running at --timeout. Every 10 s it also "
            "records work lost with its workers."
        ),
    )
    wait.add_argument("job_id", metavar="JOB")
    wait.add_argument("--timeout", type=seconds, metavar="SECONDS", help="give up after this long")
    add_target(wait)
    add_json(wait)
    wait.set_defaults(run=cmd_wait)

    result = sub.add_parser(
        "result",
        help="fetch a finished job's result",
        description=(
            "The whole result as one JSON document: for wordcount an object word -> count, "
            "for grep a list of {input, line, text}. Without --output and --top it goes to "
            "standard output."
        ),
    )
    result.add_argument("job_id", metavar="JOB")
    result.add_argument(
        "--top",
        type=positive,
        default=0,
        metavar="N",
        help="print N entries: the largest of a key -> number result, else the first",
    )
    result.add_argument("--output", type=Path, metavar="FILE", help="write the result here")
    add_job_modules(result)
    add_target(result)
    add_json(result)
    result.set_defaults(run=cmd_result)

    jobs = sub.add_parser(
        "jobs",
        help="recent jobs, newest first; --kinds: the kinds of job and their parameters",
    )
    jobs.add_argument(
        "--limit", type=positive, default=20, metavar="N", help="the N newest jobs (default 20)"
    )
    jobs.add_argument(
        "--kinds",
        action="store_true",
        help="list the job kinds `run --job` takes, with their parameters, and exit",
    )
    add_job_modules(jobs)
    add_target(jobs)
    add_json(jobs)
    jobs.set_defaults(run=cmd_jobs)


def follow(
    target: Target,
    job_id: str,
    *,
    quiet: bool,
    timeout_s: float | None = None,
    just_submitted: bool = False,
) -> JobStatus:
    """Wait for a job with a progress display, recording lost work as it
    goes; a job `just_submitted` is first read after the first interval."""
    progress = render.JobProgress()
    lost = LostWorkWatch(target.clients, target.resources)

    def update(status: JobStatus) -> None:
        lost.check(status.terminal)
        if not quiet:
            progress.update(status)
        problem = None if status.terminal else target.problem()
        if problem:
            raise OperationalError(f"job {job_id} is {status.state} and cannot go on: {problem}")

    try:
        return tracking.wait_for(
            target.clients,
            target.resources,
            job_id,
            on_update=update,
            timeout_s=timeout_s,
            sleep=target.nap or time.sleep,
            just_submitted=just_submitted,
        )
    finally:
        progress.close()


def finish(
    target: Target,
    status: JobStatus,
    *,
    as_json: bool,
    top: int = 0,
    output: Path | None = None,
    submitted: Submitted | None = None,
) -> int:
    """Print a finished (or given-up) job: its status, the first entries of
    its result, the result written to a file. Exit 0 only if it succeeded."""
    result = None
    if status.succeeded and (output or top):
        result = tracking.fetch_result(target.clients, target.resources, status.job_id, status)
        if output:
            try:
                tracking.write_result(result, output)
            except OSError as e:
                raise OperationalError(
                    f"job {status.job_id} succeeded, but its result could not be written "
                    f"to {output}: {e.strerror or e}"
                ) from e
    if as_json:
        out: dict[str, Any] = status.to_dict()
        if submitted is not None:
            out = {**asdict(submitted), **out}
        if result is not None and top:
            out["top"] = render.top_json(result, top)
        render.print_json(out)
    else:
        render.print_status(status)
        if result is not None and top:
            render.print_top(result, top)
        if output and result is not None:
            print(f"result written to {output}")
    return EXIT_OK if status.succeeded else EXIT_FAILED


def cmd_status(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    record_lost_work(target.clients, target.resources)
    status = tracking.job_status(target.clients, target.resources, args.job_id)
    problem = None if status.terminal else target.problem()
    if args.json:
        render.print_json({**status.to_dict(), "fleet_problem": problem})
    else:
        render.print_status(status)
        if problem:
            print(f"fleet      {problem}")
    return EXIT_OK


@contextmanager
def left_running(job_id: str) -> Iterator[None]:
    """Ctrl-C while following a job on a fleet that outlives the command
    (`local up`, a deployed stack): the job goes on, and the user is told
    how to find it again."""
    try:
        yield
    except KeyboardInterrupt:
        print(
            f"stopped following job {job_id}, which keeps running: "
            f"`status {job_id}`, `wait {job_id}`, or `cancel {job_id}` to stop it",
            file=sys.stderr,
        )
        raise


def cmd_wait(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    with left_running(args.job_id):
        status = follow(target, args.job_id, quiet=args.json, timeout_s=args.timeout)
    code = finish(target, status, as_json=args.json)
    if not status.terminal:
        print(f"still {status.state} after {args.timeout:g}s", file=sys.stderr)
    return code


def cmd_result(args: argparse.Namespace) -> int:
    check_output(args.output)
    # A job of your own merges its partitions with its own code.
    load_job_modules([*args.job_modules, *fleet_job_modules(args.stack)])
    target = resolve(args.stack)
    result = tracking.fetch_result(target.clients, target.resources, args.job_id)
    if args.output:
        tracking.write_result(result, args.output)
        print(f"result written to {args.output}", file=sys.stderr)
    if args.top:
        if args.json:
            render.print_json(render.top_json(result, args.top))
        else:
            render.print_top(result, args.top)
    elif not args.output:
        render.print_json(result)
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    if args.kinds:
        # And the running fleet's own jobs, which `run` knows without --job-module.
        load_job_modules([*args.job_modules, *fleet_job_modules(args.stack)])
        kinds = [job_class(name) for name in job_names()]
        if args.json:
            render.print_json(
                [
                    {
                        "name": k.name,
                        "description": k.description,
                        "steps": len(k().steps()),
                        "module": k.__module__,
                        "parameters": [
                            {
                                "name": p.name,
                                "type": p.type.__name__,
                                "required": p.required,
                                "default": None if p.required else p.default,
                                "help": p.help,
                            }
                            for p in k.parameters
                        ],
                    }
                    for k in kinds
                ]
            )
        else:
            print("\n\n".join(render.kind_text(k) for k in kinds))
        return EXIT_OK
    target = resolve(args.stack)
    rows = tracking.list_jobs(target.clients, target.resources, args.limit, costs=True)
    if args.json:
        render.print_json(rows)
    elif not rows:
        print("no jobs yet")
    else:
        render.table(
            [
                [
                    r["job_id"],
                    r["job"],
                    r["state"],
                    f"{r['done']}/{r['expected']}",
                    r["created_at"][:19],
                    f"{r['elapsed_s']}s",
                    f"~{render.usd(r['cost_usd'])}",
                ]
                for r in rows
            ],
            [
                "job",
                "kind",
                "state",
                "chunks",
                "created (UTC)",
                "elapsed",
                "est. cost on AWS" if target.local else "est. cost",
            ],
        )
        print(
            "est. cost: on-demand Fargate; `status JOB` shows Spot and what it leaves out",
            file=sys.stderr,
        )
    return EXIT_OK
