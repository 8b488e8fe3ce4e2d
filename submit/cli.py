"""Command-line parsing and printing; the work is done in submit.jobs & co."""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from submit import dlq as D
from submit import jobs as J
from submit import local as L
from submit import recovery as R
from submit.fleet_status import deployed_services, queue_depths
from submit.reference import timed_reference
from submit.report import (
    ProgressBar,
    Stopwatch,
    human_bytes,
    status_text,
    table,
    timeline_text,
    top_entries,
)
from submit.resources import ResourceError
from submit.splitting import InputError, discover, parse_size
from submit.target import Target, local_target, resolve
from worker import settings as cfg
from worker.jobs import JobError, get_job, job_names
from worker.loop import Role

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed, or AWS refused
EXIT_USAGE = 2  # bad arguments or input: nothing was enqueued

EPILOG = """\
examples:
  python -m submit run --local --job wordcount --top 20 ./books/
  python -m submit local up && python -m submit run --job grep --pattern 'ERROR|WARN' logs/ --wait
  python -m submit run s3://my-bucket/corpus/ --job wordcount --stack Drover --wait
  python -m submit status JOB         python -m submit result JOB --output counts.json
  python -m submit dlq list           python -m submit retry JOB

Commands other than `run --local` talk to the embedded AWS started by
`local up` when it is running, else to the deployed stack named by --stack
(default "Drover"), found through CloudFormation with your AWS credentials.
"""


class UsageError(ValueError):
    pass


def _size(text: str) -> int:
    try:
        return parse_size(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value}")
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be 0 or more, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    settings = cfg.load()
    parser = argparse.ArgumentParser(
        prog="python -m submit",
        description=(
            "Run MapReduce jobs on a Drover fleet: split input into chunks, queue them, "
            "follow the job and fetch its result."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def target_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument(
            "--stack",
            metavar="NAME",
            help=f"deployed stack to use (default: the running embedded AWS, "
            f"else {cfg.DEFAULT_STACK_NAME!r})",
        )

    def json_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--json", action="store_true", help="print JSON for scripts")

    run = sub.add_parser(
        "run",
        help="split input, queue a job, optionally wait for it",
        description=(
            "Split INPUT into chunks of byte ranges aligned to lines, queue one message "
            "per chunk and print the job id. Local files are uploaded once; S3 inputs "
            "are read in place."
        ),
    )
    run.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="file, directory (recursed) or s3://bucket/key or s3://bucket/prefix/",
    )
    run.add_argument(
        "--job", required=True, choices=job_names(), help="what to compute over the input"
    )
    run.add_argument("--pattern", metavar="REGEX", help="grep: Python regular expression")
    run.add_argument(
        "--chunk-size",
        type=_size,
        default=settings.default_chunk_size_bytes,
        metavar="SIZE",
        help=f"bytes per chunk, e.g. 512KB, 64MB "
        f"(default {human_bytes(settings.default_chunk_size_bytes)})",
    )
    run.add_argument(
        "--partitions",
        type=_positive,
        default=settings.default_partitions,
        metavar="R",
        help=f"reduce partitions, reduced in parallel (default {settings.default_partitions})",
    )
    run.add_argument(
        "--include",
        action="append",
        default=[],
        metavar="GLOB",
        help="only files in directories/prefixes matching GLOB (by name or relative path); "
        "repeatable",
    )
    run.add_argument(
        "--exclude", action="append", default=[], metavar="GLOB", help="skip matching files"
    )
    run.add_argument(
        "--max-failures",
        type=_count,
        default=0,
        metavar="N",
        help="fail the job early once more than N chunks have failed (default 0)",
    )
    run.add_argument("--wait", action="store_true", help="follow the job with a progress bar")
    run.add_argument(
        "--output", type=Path, metavar="FILE", help="write the result as JSON (implies --wait)"
    )
    run.add_argument(
        "--top", type=_count, default=0, metavar="N", help="print the first N result entries"
    )
    run.add_argument(
        "--local",
        action="store_true",
        help="one-shot: start an embedded AWS and a local fleet, run, then tear down",
    )
    run.add_argument(
        "--max-workers",
        type=_positive,
        default=os.cpu_count() or 2,
        metavar="N",
        help="--local: most map workers at once (default: the CPU count)",
    )
    run.add_argument(
        "--compare",
        action="store_true",
        help="--local: also compute the result the plain single-process way, check that "
        "both agree and show both times",
    )
    target_opts(run)
    json_opt(run)
    run.set_defaults(func=cmd_run)

    status = sub.add_parser("status", help="a job's state, progress and failures")
    status.add_argument("job_id", metavar="JOB")
    target_opts(status)
    json_opt(status)
    status.set_defaults(func=cmd_status)

    wait = sub.add_parser("wait", help="follow a job until it ends; exit 1 if it fails")
    wait.add_argument("job_id", metavar="JOB")
    wait.add_argument("--timeout", type=float, metavar="SECONDS", help="give up after this long")
    target_opts(wait)
    json_opt(wait)
    wait.set_defaults(func=cmd_wait)

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
    result.add_argument("--top", type=_count, default=0, metavar="N", help="print N entries")
    result.add_argument("--output", type=Path, metavar="FILE", help="write the result here")
    target_opts(result)
    json_opt(result)
    result.set_defaults(func=cmd_result)

    jobs = sub.add_parser("jobs", help="recent jobs, newest first")
    jobs.add_argument("--limit", type=_positive, default=20, metavar="N")
    target_opts(jobs)
    json_opt(jobs)
    jobs.set_defaults(func=cmd_jobs)

    fleet = sub.add_parser("fleet", help="queue depths and workers")
    target_opts(fleet)
    json_opt(fleet)
    fleet.set_defaults(func=cmd_fleet)

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
        type=_positive,
        default=os.cpu_count() or 2,
        metavar="N",
        help="most map workers at once (default: the CPU count)",
    )
    up.add_argument(
        "--port", type=int, default=0, metavar="P", help="port on 127.0.0.1 (default: a free one)"
    )
    up.add_argument(
        "--idle-seconds",
        type=float,
        default=L.LOCAL_IDLE_S,
        metavar="S",
        help=f"scale a pool to zero after S idle seconds (default {L.LOCAL_IDLE_S:g})",
    )
    up.set_defaults(func=cmd_local_up)
    lstatus = local_sub.add_parser("status", help="queues, workers and recent jobs")
    json_opt(lstatus)
    lstatus.set_defaults(func=cmd_local_status)
    ldown = local_sub.add_parser("down", help="stop workers gracefully, then the embedded AWS")
    ldown.set_defaults(func=cmd_local_down)

    dlq = sub.add_parser(
        "dlq",
        help="what is in the dead-letter queues, and putting it back",
        description=(
            "Messages land in a dead-letter queue when a chunk or a partition failed for "
            "good: a permanent error, maxReceiveCount failed attempts, or workers that "
            "vanished while holding it (SQS moves those by itself; these commands record "
            "them as failures when they find them)."
        ),
    )
    dlq_sub = dlq.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    def queue_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--queue", choices=D.QUEUES, help="only this queue's DLQ (default: both)")

    dlist = dlq_sub.add_parser("list", help="message id, job, chunk, receives, age, last error")
    queue_opt(dlist)
    dlist.add_argument("--job", metavar="JOB", help="only this job's messages")
    target_opts(dlist)
    json_opt(dlist)
    dlist.set_defaults(func=cmd_dlq_list)

    dshow = dlq_sub.add_parser("show", help="one message: its reason, task and record")
    dshow.add_argument("message_id", metavar="MESSAGE_ID")
    target_opts(dshow)
    json_opt(dshow)
    dshow.set_defaults(func=cmd_dlq_show)

    dredrive = dlq_sub.add_parser(
        "redrive",
        help="put messages back to work",
        description=(
            "Take messages out of the dead-letter queues and put their work back: a failed "
            "job is reopened and every chunk (or partition) of it that is not done is sent "
            "again from its plan, since its workers dropped the rest; any other message is "
            "sent back to its queue as it was. Works by receive, send and delete, on AWS "
            "and on the embedded AWS alike."
        ),
    )
    which = dredrive.add_mutually_exclusive_group(required=True)
    which.add_argument("--job", metavar="JOB", help="only this job's messages")
    which.add_argument("--all", action="store_true", help="every message")
    queue_opt(dredrive)
    dredrive.add_argument("--dry-run", action="store_true", help="say what would happen")
    target_opts(dredrive)
    json_opt(dredrive)
    dredrive.set_defaults(func=cmd_dlq_redrive)

    dpurge = dlq_sub.add_parser(
        "purge", help="delete a job's messages for good (its failures stay recorded)"
    )
    dpurge.add_argument("--job", required=True, metavar="JOB")
    dpurge.add_argument("--yes", action="store_true", help="really delete them")
    target_opts(dpurge)
    json_opt(dpurge)
    dpurge.set_defaults(func=cmd_dlq_purge)

    retry = sub.add_parser(
        "retry",
        help="send a job's failed work again",
        description=(
            "Resume a failed job where it stopped: in its map phase every chunk not done is "
            "sent again from the job's plan, in its reduce phase every partition not done; "
            "the job's dead-letter messages are removed. On a running job that tolerates "
            "failures (--max-failures), only its failed chunks are sent again. The result "
            "is the same as if nothing had failed."
        ),
    )
    retry.add_argument("job_id", metavar="JOB")
    retry.add_argument("--dry-run", action="store_true", help="say what would be sent")
    target_opts(retry)
    json_opt(retry)
    retry.set_defaults(func=cmd_retry)

    cancel = sub.add_parser(
        "cancel",
        help="stop a job; workers drop its remaining chunks uncounted",
        description=(
            "Mark a job CANCELLED. Workers drop its remaining messages unread (within a "
            "few seconds: they read a job's state at most every 5 s), nothing more is "
            "counted, and a cancelled job cannot be retried."
        ),
    )
    cancel.add_argument("job_id", metavar="JOB")
    target_opts(cancel)
    json_opt(cancel)
    cancel.set_defaults(func=cmd_cancel)
    return parser


# Commands ----------------------------------------------------------------------


def _print_json(value: Any) -> None:
    json.dump(value, sys.stdout, ensure_ascii=False, indent=2)
    sys.stdout.write("\n")


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.pattern is not None:
        params["pattern"] = args.pattern
    get_job(args.job).check_params(params)
    return params


def cmd_run(args: argparse.Namespace) -> int:
    params = _params(args)
    if args.local:
        if args.stack:
            raise UsageError("--local and --stack exclude each other")
        remote = [i for i in args.inputs if i.startswith("s3://")]
        if remote:
            raise UsageError(
                f"{remote[0]}: --local reads local files only; S3 inputs need a deployed stack"
            )
        # Fail on a missing input before starting anything.
        discover(args.inputs, include=args.include, exclude=args.exclude)
        return _run_local(args, params)
    target = resolve(args.stack)
    return _run_on(target, args, params)


def _submit(target: Target, args: argparse.Namespace, params: dict[str, Any]) -> J.Submitted:
    bar = ProgressBar()
    try:
        return J.submit_job(
            target.clients,
            target.resources,
            inputs=args.inputs,
            job=args.job,
            params=params,
            chunk_size_bytes=args.chunk_size,
            partitions=args.partitions,
            max_failures=args.max_failures,
            include=args.include,
            exclude=args.exclude,
            wake=target.wake,
            progress=lambda phase, sent, total: bar.upload(sent, total),
        )
    finally:
        bar.close()


def _run_on(target: Target, args: argparse.Namespace, params: dict[str, Any]) -> int:
    submitted = _submit(target, args, params)
    if not (args.wait or args.output or args.top):
        if args.json:
            _print_json(vars_of(submitted))
        else:
            print(submitted.job_id)
            print(
                f"{submitted.chunks} chunks over {submitted.inputs} inputs "
                f"({human_bytes(submitted.input_bytes)}) queued on {target.description}",
                file=sys.stderr,
            )
        return EXIT_OK
    print(f"job {submitted.job_id}: {submitted.chunks} chunks queued", file=sys.stderr)
    status = _follow(target, submitted.job_id, quiet=args.json)
    return _finish(target, args, status)


def _follow(
    target: Target, job_id: str, *, quiet: bool, timeout_s: float | None = None
) -> J.JobStatus:
    bar = ProgressBar()
    lost = R.LostWorkWatch(target.clients, target.resources)

    def update(status: J.JobStatus) -> None:
        lost.check(status)
        if not quiet:
            bar.update(status)

    try:
        return J.wait_for(
            target.clients, target.resources, job_id, on_update=update, timeout_s=timeout_s
        )
    finally:
        bar.close()


def _finish(target: Target, args: argparse.Namespace, status: J.JobStatus) -> int:
    result = None
    if status.state == J.SUCCEEDED and (args.output or args.top):
        result = J.fetch_result(target.clients, target.resources, status.job_id)
        if args.output:
            J.write_result(result, args.output)
    if args.json:
        out = status.to_dict()
        if result is not None and args.top:
            out["top"] = top_entries(result, args.top)
        _print_json(out)
    else:
        print(status_text(status))
        if result is not None and args.top:
            print(_top_table(status.job, result, args.top))
        if args.output and result is not None:
            print(f"result written to {args.output}")
    return EXIT_OK if status.state == J.SUCCEEDED else EXIT_FAILED


def _top_table(job: str, result: Any, n: int) -> str:
    rows = top_entries(result, n)
    headers = ["word", "count"] if isinstance(result, dict) else ["input", "line", "text"]
    title = f"top {len(rows)}" if isinstance(result, dict) else f"first {len(rows)} matches"
    return f"{title}:\n" + table(rows, headers)


def _run_local(args: argparse.Namespace, params: dict[str, Any]) -> int:
    watch = Stopwatch()
    print(
        f"starting the embedded AWS and a local fleet of up to {args.max_workers} workers",
        file=sys.stderr,
    )
    with L.LocalDrover(L.LocalOptions(max_workers=args.max_workers)) as local:
        assert local.resources is not None and local.fleet is not None
        watch.mark("start")
        fleet = local.fleet
        target = local_target(local.aws.endpoint_url, local.resources, wake=fleet.wake)
        submitted = _submit(target, args, params)
        watch.mark("upload+queue")
        print(
            f"job {submitted.job_id}: {submitted.inputs} inputs, "
            f"{human_bytes(submitted.input_bytes)}, {submitted.chunks} chunks of up to "
            f"{human_bytes(args.chunk_size)}, {args.partitions} partition(s)",
            file=sys.stderr,
        )
        status = _follow(target, submitted.job_id, quiet=args.json)
        watch.mark("job")
        need_result = args.compare and status.state == J.SUCCEEDED
        code = _finish(target, args, status)
        watch.mark("result")
        drover_result = (
            J.fetch_result(target.clients, target.resources, status.job_id) if need_result else None
        )
        peak = local.fleet.peak(Role.MAP)
        timeline = local.fleet.timeline(Role.MAP)
        print(
            f"stopping the fleet (peak {peak} map workers) and the embedded AWS",
            file=sys.stderr,
        )
    watch.mark("shutdown")
    if drover_result is not None:
        files = discover(args.inputs, include=args.include, exclude=args.exclude)
        expected, reference_s = timed_reference(args.job, params, files)
        same = expected == drover_result
        print(
            f"reference    the single-process one-liner took {reference_s:.1f}s; Drover's job "
            f"{status.elapsed_s:.1f}s from queued to done ({watch.total():.1f}s for the whole "
            "run, embedded AWS and upload included); results "
            + ("are identical" if same else "DIFFER"),
            file=sys.stderr if args.json else sys.stdout,
        )
        if not same:
            code = EXIT_FAILED
    if not args.json:
        print(f"chunks       {submitted.chunks}")
        print(f"peak workers {peak} (max {args.max_workers})")
        print(f"map workers  {timeline_text(timeline)}")
        print(f"timings      {watch.text()}")
    return code


def cmd_status(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    # Work lost with its workers is in a DLQ without a record until looked at.
    D.reconcile(target.clients, target.resources)
    status = J.job_status(target.clients, target.resources, args.job_id)
    if args.json:
        _print_json(status.to_dict())
    else:
        print(status_text(status))
    return EXIT_OK


def cmd_wait(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    status = _follow(target, args.job_id, quiet=args.json, timeout_s=args.timeout)
    if args.json:
        _print_json(status.to_dict())
    else:
        print(status_text(status))
    if not status.terminal:
        print(f"still {status.state} after {args.timeout:g}s", file=sys.stderr)
        return EXIT_FAILED
    return EXIT_OK if status.state == J.SUCCEEDED else EXIT_FAILED


def cmd_result(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    result = J.fetch_result(target.clients, target.resources, args.job_id)
    if args.output:
        J.write_result(result, args.output)
        print(f"result written to {args.output}", file=sys.stderr)
    if args.top:
        if args.json:
            _print_json(top_entries(result, args.top))
        else:
            kind = J.job_status(target.clients, target.resources, args.job_id, details=False).job
            print(_top_table(kind, result, args.top))
    elif not args.output:
        _print_json(result)
    return EXIT_OK


def cmd_jobs(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    rows = J.list_jobs(target.clients, target.resources, args.limit)
    if args.json:
        _print_json(rows)
    elif not rows:
        print("no jobs yet")
    else:
        print(
            table(
                [
                    [
                        r["job_id"],
                        r["job"],
                        r["state"],
                        f"{r['done']}/{r['expected']}",
                        r["created_at"][:19],
                        f"{r['elapsed_s']}s",
                    ]
                    for r in rows
                ],
                ["job", "kind", "state", "chunks", "created (UTC)", "elapsed"],
            )
        )
    return EXIT_OK


def _fleet_view(target: Target) -> dict[str, Any]:
    view: dict[str, Any] = {
        "target": target.description,
        "queues": queue_depths(target.clients.sqs, target.resources),
    }
    if target.local:
        view["workers"] = L.read_fleet_status() or {}
    else:
        view["services"] = deployed_services(target.clients, target.resources)
    return view


def _print_fleet(view: dict[str, Any]) -> None:
    print(view["target"])
    print(
        table(
            [[q, d["visible"], d["in_flight"]] for q, d in view["queues"].items()],
            ["queue", "visible", "in flight"],
        )
    )
    if "workers" in view:
        rows = [
            [role, w["workers"], w["peak"], w["max"], timeline_text(w["timeline"][-6:])]
            for role, w in view["workers"].items()
        ]
        print(table(rows, ["pool", "workers", "peak", "max", "recent changes"]))
    if "services" in view:
        rows = [
            [role, s["desired"], s["running"], s["pending"]] for role, s in view["services"].items()
        ]
        print(table(rows, ["service", "desired", "running", "pending"]))


def cmd_fleet(args: argparse.Namespace) -> int:
    view = _fleet_view(resolve(args.stack))
    if args.json:
        _print_json(view)
    else:
        _print_fleet(view)
    return EXIT_OK


def cmd_local_up(args: argparse.Namespace) -> int:
    state = L.up(
        L.LocalOptions(port=args.port, max_workers=args.max_workers, idle_s=args.idle_seconds)
    )
    print(
        f"embedded AWS running on {state.endpoint_url} (pid {state.pid}), "
        f"fleet of up to {state.max_workers} map workers"
    )
    print("submit with `python -m submit run INPUT --job wordcount --wait`;")
    print("stop with `python -m submit local down`")
    return EXIT_OK


def cmd_local_status(args: argparse.Namespace) -> int:
    state = L.running_state()
    if state is None:
        if args.json:
            _print_json({"running": False})
        else:
            print("the embedded AWS is not running (`python -m submit local up` starts it)")
        return EXIT_FAILED
    target = local_target(state.endpoint_url, state.resources)
    view = _fleet_view(target)
    view["running"] = True
    view["pid"] = state.pid
    view["jobs"] = J.list_jobs(target.clients, target.resources, 10)
    if args.json:
        _print_json(view)
        return EXIT_OK
    print(f"running, pid {state.pid}")
    _print_fleet(view)
    if view["jobs"]:
        print(
            table(
                [
                    [r["job_id"], r["job"], r["state"], f"{r['done']}/{r['expected']}"]
                    for r in view["jobs"]
                ],
                ["job", "kind", "state", "chunks"],
            )
        )
    return EXIT_OK


def cmd_local_down(args: argparse.Namespace) -> int:
    state = L.down()
    if state is None:
        print("the embedded AWS was not running")
    else:
        print(f"stopped the embedded AWS (pid {state.pid}) and its workers")
    return EXIT_OK


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f}s"
    if seconds < 3600:
        return f"{seconds // 60:.0f}m{seconds % 60:02.0f}s"
    if seconds < 86400:
        return f"{seconds // 3600:.0f}h{seconds % 3600 // 60:02.0f}m"
    return f"{seconds // 86400:.0f}d{seconds % 86400 // 3600:02.0f}h"


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_dlq_list(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    letters = D.list_dead_letters(
        target.clients, target.resources, queue=args.queue, job_id=args.job
    )
    if args.json:
        _print_json([d.to_dict() for d in letters])
    elif not letters:
        print("the dead-letter queues are empty" if not args.job else f"none of job {args.job}")
    else:
        print(
            table(
                [
                    [
                        d.message_id,
                        d.queue,
                        d.job_id or "-",
                        d.what,
                        d.receives,
                        _age(d.age_s),
                        _short(d.error),
                    ]
                    for d in letters
                ],
                ["message id", "queue", "job", "chunk", "receives", "age", "last error"],
            )
        )
    return EXIT_OK


def cmd_dlq_show(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    shown = D.show(target.clients, target.resources, args.message_id)
    if args.json:
        _print_json(shown)
        return EXIT_OK
    for key in ("message_id", "queue", "job_id", "chunk", "partition", "receives"):
        if shown.get(key) is not None:
            print(f"{key:<11}{shown[key]}")
    print(f"{'age':<11}{_age(shown['age_s'])}")
    print(f"{'error':<11}{shown['error']}")
    record = shown.get("record")
    if record:
        print(
            f"{'record':<11}job {record['job_state']}, item {record['state']}, "
            f"{record['attempts']} attempt(s), last by {record['worker']}"
        )
        if record.get("last_error") and record["last_error"] != shown["error"]:
            print(f"{'last error':<11}{record['last_error']}")
    if "task" in shown:
        print("task       " + json.dumps(shown["task"], ensure_ascii=False))
    else:
        print("body       " + shown["body"])
    return EXIT_OK


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    report = R.redrive(
        target.clients,
        target.resources,
        job_id=args.job,
        queue=args.queue,
        dry_run=args.dry_run,
        wake=target.wake,
    )
    if args.json:
        _print_json(report.to_dict())
        return EXIT_OK
    would = "would " if report.dry_run else ""
    for queue, moved in report.moved.items():
        print(
            f"{queue} DLQ: {would}take out {moved} message(s), "
            f"{would}send back {report.sent_back[queue]} as they were"
        )
    for r in report.resumed:
        print(_resumed_text(r, would))
    return EXIT_OK


def _resumed_text(r: R.Resumed, would: str = "") -> str:
    what = "chunk(s)" if r.phase == "map" else "partition(s)"
    numbers = ", ".join(map(str, r.resent[:20])) + (", ..." if len(r.resent) > 20 else "")
    return (
        f"job {r.job_id}: {would}go from {r.from_state} to {r.to_state}; {would}send "
        f"{len(r.resent)} {what} again ({numbers or 'none'}); "
        f"{r.dead_letters_removed} dead-letter message(s) covered"
    )


def cmd_dlq_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError(
            f"dlq purge deletes job {args.job}'s dead-letter messages for good; add --yes"
        )
    target = resolve(args.stack)
    counts = D.purge(target.clients, target.resources, job_id=args.job)
    if args.json:
        _print_json({"job_id": args.job, "deleted": counts})
    else:
        print(
            f"deleted {counts['map']} map and {counts['reduce']} reduce dead-letter "
            f"message(s) of job {args.job}"
        )
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    resumed = R.retry(
        target.clients, target.resources, args.job_id, dry_run=args.dry_run, wake=target.wake
    )
    if args.json:
        _print_json({"dry_run": args.dry_run, **resumed.to_dict()})
        return EXIT_OK
    print(_resumed_text(resumed, "would " if args.dry_run else ""))
    if not args.dry_run:
        print(f"follow it with `python -m submit wait {args.job_id}`", file=sys.stderr)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    cancelled = R.cancel(target.clients, target.resources, args.job_id)
    if args.json:
        _print_json(cancelled)
    else:
        print(
            f"job {args.job_id}: {cancelled['from_state']} -> CANCELLED "
            f"({cancelled['done']}/{cancelled['expected']} chunks were done); "
            "workers drop the rest"
        )
    return EXIT_OK


def vars_of(obj: Any) -> dict[str, Any]:
    return {k: v for k, v in vars(obj).items() if not k.startswith("_")}


# Entry point ----------------------------------------------------------------------

ERRORS: Sequence[tuple[type[BaseException], int, Callable[[BaseException], str]]] = (
    (UsageError, EXIT_USAGE, str),
    (JobError, EXIT_USAGE, str),
    (InputError, EXIT_USAGE, str),
    (L.LocalError, EXIT_FAILED, str),
    (ResourceError, EXIT_FAILED, str),
    (J.JobNotFound, EXIT_FAILED, str),
    (R.RecoveryError, EXIT_FAILED, str),
    (D.DeadLetterError, EXIT_FAILED, str),
    (ValueError, EXIT_USAGE, str),
    (ClientError, EXIT_FAILED, lambda e: f"AWS refused: {e}"),
    (BotoCoreError, EXIT_FAILED, lambda e: f"AWS unreachable: {e}"),
)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        code: int = args.func(args)
        return code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as e:
        for kind, code, text in ERRORS:
            if isinstance(e, kind):
                print(f"{parser.prog}: error: {text(e)}", file=sys.stderr)
                return code
        raise
