"""run: split input, queue a job, and follow it if asked; `run --local` as
a one-shot on an embedded AWS started and stopped around the job."""

from __future__ import annotations

import argparse
import os
import sys
from dataclasses import asdict
from pathlib import Path
from typing import Any

from submit import tracking
from submit.cli import render
from submit.cli.follow import finish, follow, left_running
from submit.cli.options import (
    add_job_modules,
    add_json,
    add_target,
    check_output,
    count,
    load_job_modules,
    params_of,
    positive,
    size,
)
from submit.errors import EXIT_FAILED, EXIT_OK, DroverError, UsageError, translated
from submit.reference import COMPARABLE, timed_reference
from submit.splitting import InputFile, check_local, discover
from submit.submission import Submitted, check_request, submit_job
from submit.target import Target, fleet_job_modules, local_target, resolve
from worker import settings as cfg
from worker.jobs import job_class
from worker.ledger import Phase

DEFAULTS = cfg.Settings()


# run --local's fleet: as many map workers as cores.
LOCAL_WORKERS = os.cpu_count() or 2


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = sub.add_parser(
        "run",
        help="split input, queue a job, optionally wait for it",
        description=(
            "Split INPUT into chunks of byte ranges aligned to lines, queue one message "
            "per chunk and print the job id. Local files are uploaded once for a deployed "
            "stack and read in place by a local fleet; S3 inputs are read in place. "
            "`run --job NAME --help` also shows the job's parameters; `jobs --kinds` lists "
            "every kind."
        ),
        add_help=False,
    )
    run.add_argument(
        "-h", "--help", action=JobHelp, nargs=0, help="show this help (and --job's) and exit"
    )
    run.add_argument(
        "inputs",
        nargs="+",
        metavar="INPUT",
        help="file, directory (recursed) or s3://bucket/key or s3://bucket/prefix/",
    )
    run.add_argument(
        "--job",
        required=True,
        metavar="NAME",
        help="what to compute: a built-in job (see `jobs --kinds`) or one of --job-module",
    )
    run.add_argument(
        "--param",
        action="append",
        default=[],
        dest="params",
        metavar="NAME=VALUE",
        help="a parameter of the job, checked before anything is queued; repeatable",
    )
    run.add_argument(
        "--pattern", metavar="REGEX", help="grep: Python regular expression (--param pattern=)"
    )
    add_job_modules(run)
    run.add_argument(
        "--chunk-size",
        type=size,
        default=DEFAULTS.default_chunk_size_bytes,
        metavar="SIZE",
        help=f"bytes per chunk, e.g. 512KB, 64MB "
        f"(default {render.human_bytes(DEFAULTS.default_chunk_size_bytes)})",
    )
    run.add_argument(
        "--partitions",
        type=positive,
        default=DEFAULTS.default_partitions,
        metavar="R",
        help=f"reduce partitions, reduced in parallel (default {DEFAULTS.default_partitions})",
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
        "--exclude",
        action="append",
        default=[],
        metavar="GLOB",
        help="skip files matching GLOB, and directories matching it with everything under "
        "them (by name or relative path: --exclude .git, --exclude '*.log'); repeatable",
    )
    run.add_argument(
        "--max-failures",
        type=count,
        default=0,
        metavar="N",
        help="let up to N chunks fail and the job run on (default 0: the first failed chunk "
        "fails the job); a job with any failed chunk ends FAILED, its other chunks done, for "
        "`retry` once the cause is fixed",
    )
    run.add_argument("--wait", action="store_true", help="follow the job with a progress bar")
    run.add_argument(
        "--output", type=Path, metavar="FILE", help="write the result as JSON (implies --wait)"
    )
    run.add_argument(
        "--top",
        type=positive,
        default=0,
        metavar="N",
        help="print N entries of the result: the largest of a key -> number result, else "
        "the first (implies --wait)",
    )
    run.add_argument(
        "--local",
        action="store_true",
        help="one-shot: start an embedded AWS and a local fleet, run, then tear down",
    )
    run.add_argument(
        "--max-workers",
        type=positive,
        metavar="N",
        help=f"--local: most map workers at once (default: the CPU count, {LOCAL_WORKERS})",
    )
    run.add_argument(
        "--compare",
        action="store_true",
        help="--local: also compute the result the plain single-process way, check that "
        "both agree and show both times",
    )
    add_target(run)
    add_json(run)
    run.set_defaults(run=cmd_run)


class JobHelp(argparse.Action):
    """-h/--help: the command's help and, when --job came before it, the
    job's description and parameters."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: object,
        option_string: str | None = None,
    ) -> None:
        parser.print_help()
        name = getattr(namespace, "job", None)
        if name:
            # translated() turns a JobError into a DroverError as it exits.
            try:
                with translated():
                    load_job_modules(getattr(namespace, "job_modules", None) or [])
                    text = render.kind_text(job_class(name))
            except DroverError as e:
                text = f"--job {name}: {e}"
            print()
            print(text)
        parser.exit()


def _params(args: argparse.Namespace) -> dict[str, Any]:
    params: dict[str, Any] = params_of(args.params)
    if args.pattern is not None:
        if params.get("pattern", args.pattern) != args.pattern:
            raise UsageError(
                f"--pattern {args.pattern!r} and --param pattern={params['pattern']!r} "
                "disagree; give one of them"
            )
        params["pattern"] = args.pattern
    return check_request(
        job=args.job,
        params=params,
        chunk_size_bytes=args.chunk_size,
        partitions=args.partitions,
        max_failures=args.max_failures,
    )


def cmd_run(args: argparse.Namespace) -> int:
    check_output(args.output)
    known = () if args.local else fleet_job_modules(args.stack)
    args.job_modules = load_job_modules([*args.job_modules, *known])
    params = _params(args)
    if args.compare and args.job not in COMPARABLE:
        raise UsageError(f"--compare has a reference for {' and '.join(COMPARABLE)} only")
    local_only = [
        o
        for o, given in (
            ("--compare", args.compare),
            ("--max-workers", args.max_workers is not None),
        )
        if given
    ]
    if local_only and not args.local:
        raise UsageError(
            f"{' and '.join(local_only)}: with --local only (a running fleet has its own "
            "workers: `local up --max-workers`)"
        )
    if args.max_workers is None:
        args.max_workers = LOCAL_WORKERS
    if args.local:
        if args.stack:
            raise UsageError("--local and --stack exclude each other")
        remote = [i for i in args.inputs if i.startswith("s3://")]
        if remote:
            raise UsageError(
                f"{remote[0]}: --local reads local files only; S3 inputs need a deployed stack"
            )
        return _run_local(args, params)
    for spec in args.inputs:  # the user's to fix, whichever stack is there or not
        if not spec.startswith("s3://"):
            check_local(spec)
    target = resolve(args.stack)
    target.check_loads(args.job)
    return _run_on(target, args, params)


def _submit(
    target: Target,
    args: argparse.Namespace,
    params: dict[str, Any],
    files: list[InputFile] | None = None,
) -> Submitted:
    progress = render.JobProgress()
    try:
        submitted = submit_job(
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
            progress=lambda phase, done, total: (
                progress.queue(done, total) if phase == "queue" else progress.upload(done, total)
            ),
            files=files,
        )
    finally:
        progress.close()
    if not submitted.inputs:
        selected = " that --include and --exclude select" if args.include or args.exclude else ""
        print(f"warning: no input file{selected}; the job has nothing to read", file=sys.stderr)
    return submitted


def _run_on(target: Target, args: argparse.Namespace, params: dict[str, Any]) -> int:
    submitted = _submit(target, args, params)
    if not (args.wait or args.output or args.top):
        if args.json:
            render.print_json(asdict(submitted))
        else:
            print(submitted.job_id)
            print(
                f"{submitted.chunks} chunks over {submitted.inputs} inputs "
                f"({render.human_bytes(submitted.input_bytes)}) queued on {target.description}",
                file=sys.stderr,
            )
        return EXIT_OK
    print(f"job {submitted.job_id}: {submitted.chunks} chunks queued", file=sys.stderr)
    with left_running(submitted.job_id):
        status = follow(target, submitted.job_id, quiet=args.json, just_submitted=True)
    return finish(
        target, status, as_json=args.json, top=args.top, output=args.output, submitted=submitted
    )


def _run_local(args: argparse.Namespace, params: dict[str, Any]) -> int:
    from submit.embedded_process import command_started_at
    from submit.local import LocalDrover, LocalOptions, local_settings

    settings = local_settings()  # a bad cdk.json stops the run before anything starts
    # The whole run counts from the command's start, its imports included.
    watch = render.Stopwatch(since=command_started_at())
    print(
        f"starting the embedded AWS and a local fleet of up to {args.max_workers} workers",
        file=sys.stderr,
    )
    options = LocalOptions(
        max_workers=args.max_workers, settings=settings, job_modules=tuple(args.job_modules)
    )
    local = LocalDrover(options)
    # The embedded AWS starts in its own process while this one finds the
    # inputs; nothing is uploaded, its workers read them in place.
    local.launch()
    try:
        files = discover(args.inputs, include=args.include, exclude=args.exclude)
        assert local.fleet is not None
        fleet = local.fleet
        # Start the map workers now, beside the embedded AWS, while the job
        # is planned, created and queued: their start-up (two interpreters
        # each) is then off the job's path. A job has at least this many
        # chunks, each at most the chunk size.
        local_bytes = sum(f.size for f in files)
        if local_bytes:
            fleet.wake(Phase.MAP, -(-local_bytes // args.chunk_size))
        local.start()
        assert local.resources is not None
        watch.mark("start")
        target = local_target(
            local.aws.endpoint_url,
            local.resources,
            wake=fleet.wake,
            job_modules=tuple(args.job_modules),
            fleet_problem=fleet.problem,
            clients=local.clients(),
            nap=fleet.nap,
        )
        submitted = _submit(target, args, params, files=files)
        # And the reducers, which would otherwise start only once the map is
        # done, with their start-up on the job's path; started after the map
        # workers, they do not slow those down, and they wait for the map
        # phase's end at one receive per long poll.
        fleet.wake(Phase.REDUCE, args.partitions)
        watch.mark("queue")
        print(
            f"job {submitted.job_id}: {submitted.inputs} inputs, "
            f"{render.human_bytes(submitted.input_bytes)}, {submitted.chunks} chunks of up to "
            f"{render.human_bytes(args.chunk_size)}, {args.partitions} partition(s)",
            file=sys.stderr,
        )
        status = follow(target, submitted.job_id, quiet=args.json, just_submitted=True)
        watch.mark("job")
        code = finish(
            target,
            status,
            as_json=args.json,
            top=args.top,
            output=args.output,
            submitted=submitted,
        )
        if status.succeeded and args.output is None:
            print(
                "the whole result stops with the embedded AWS: --output FILE keeps it",
                file=sys.stderr,
            )
        watch.mark("result")
        drover_result = (
            tracking.fetch_result(target.clients, target.resources, status.job_id, status)
            if args.compare and status.succeeded
            else None
        )
        peak = fleet.peak(Phase.MAP)
        timeline = fleet.timeline(Phase.MAP)
        print(
            f"stopping the fleet (peak {peak} map workers) and the embedded AWS",
            file=sys.stderr,
        )
    except BaseException:
        # Interrupted, terminated or failed: the run is given up, and so are
        # the chunks its workers hold.
        local.stop(at_once=True)
        raise
    local.stop()
    watch.mark("shutdown")
    if drover_result is not None:
        files = discover(args.inputs, include=args.include, exclude=args.exclude)
        expected, reference_s = timed_reference(args.job, params, files)
        same = expected == drover_result
        print(
            f"reference    the single-process one-liner took {reference_s:.1f}s; Drover's job "
            f"{status.elapsed_s:.1f}s from queued to done ({watch.total():.1f}s for the whole "
            "run, the embedded AWS's start and shutdown included); results "
            + ("are identical" if same else "DIFFER"),
            file=sys.stderr if args.json else sys.stdout,
        )
        if not same:
            code = EXIT_FAILED
    if not args.json:
        print(f"chunks       {submitted.chunks}")
        print(f"peak workers {peak} (max {args.max_workers})")
        print(f"map workers  {render.timeline_text(timeline)}")
        print(f"timings      {watch.text()}")
    return code
