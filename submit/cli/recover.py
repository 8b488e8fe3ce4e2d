"""dlq list/show/redrive/purge, retry and cancel: failures and what to do
about them."""

from __future__ import annotations

import argparse
import json
import sys

from submit import dlq, recovery
from submit.cli import render
from submit.cli.options import add_json, add_target
from submit.errors import EXIT_OK, UsageError
from submit.lost_work import record_lost_work
from submit.target import resolve


def add_parsers(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    group = sub.add_parser(
        "dlq",
        help="what is in the dead-letter queues, and putting it back",
        description=(
            "Messages land in a dead-letter queue when a chunk or a partition failed for "
            "good: a permanent error, maxReceiveCount failed attempts, or workers that "
            "vanished while holding it (SQS moves those by itself; these commands record "
            "them as failed chunks when they find them, which can fail their job)."
        ),
    )
    dlq_sub = group.add_subparsers(dest="dlq_command", required=True, metavar="ACTION")

    def queue_opt(p: argparse.ArgumentParser) -> None:
        p.add_argument("--queue", choices=dlq.QUEUES, help="only this queue's DLQ (default: both)")

    dlist = dlq_sub.add_parser("list", help="message id, job, chunk, receives, age, last error")
    queue_opt(dlist)
    dlist.add_argument("--job", metavar="JOB", help="only this job's messages")
    add_target(dlist)
    add_json(dlist)
    dlist.set_defaults(run=cmd_dlq_list)

    dshow = dlq_sub.add_parser("show", help="one message: its reason, task and record")
    dshow.add_argument("message_id", metavar="MESSAGE_ID")
    add_target(dshow)
    add_json(dshow)
    dshow.set_defaults(run=cmd_dlq_show)

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
    add_target(dredrive)
    add_json(dredrive)
    dredrive.set_defaults(run=cmd_dlq_redrive)

    dpurge = dlq_sub.add_parser(
        "purge", help="delete a job's messages for good (its failures stay recorded)"
    )
    dpurge.add_argument("--job", required=True, metavar="JOB", help="the job whose messages go")
    dpurge.add_argument("--yes", action="store_true", help="really delete them")
    add_target(dpurge)
    add_json(dpurge)
    dpurge.set_defaults(run=cmd_dlq_purge)

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
    add_target(retry)
    add_json(retry)
    retry.set_defaults(run=cmd_retry)

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
    add_target(cancel)
    add_json(cancel)
    cancel.set_defaults(run=cmd_cancel)


def _short(text: str, width: int = 90) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def cmd_dlq_list(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    record_lost_work(target.clients, target.resources, queue=args.queue)
    letters = dlq.list_dead_letters(
        target.clients, target.resources, queue=args.queue, job_id=args.job
    )
    if args.json:
        render.print_json([d.to_dict() for d in letters])
    elif not letters:
        where = f"the {args.queue} dead-letter queue" if args.queue else "the dead-letter queues"
        empty = f"{where} {'is' if args.queue else 'are'} empty"
        print(f"no message of job {args.job} in {where}" if args.job else empty)
    else:
        render.table(
            [
                [
                    d.message_id,
                    d.queue,
                    d.job_id or "-",
                    d.what,
                    d.receives,
                    render.age(d.age_s),
                    _short(d.reason),
                ]
                for d in letters
            ],
            ["message id", "queue", "job", "chunk", "receives", "age", "last error"],
        )
    return EXIT_OK


def cmd_dlq_show(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    shown = dlq.show(target.clients, target.resources, args.message_id)
    if args.json:
        render.print_json(shown)
        return EXIT_OK
    for key in ("message_id", "queue", "job_id", "chunk", "partition", "receives"):
        if shown.get(key) is not None:
            print(f"{key:<11}{shown[key]}")
    print(f"{'age':<11}{render.age(shown['age_s'])}")
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


def _resumed_text(r: recovery.Resumed, would: str = "") -> str:
    what = "chunk(s)" if r.phase == "map" else "partition(s)"
    numbers = ", ".join(map(str, r.resent[:20])) + (", ..." if len(r.resent) > 20 else "")
    sent = (
        f"{would}finalize it, every partition being done"
        if r.finalized
        else f"{would}send {len(r.resent)} {what} again ({numbers or 'none'})"
    )
    return (
        f"job {r.job_id}: {would}go from {r.from_state} to {r.to_state}; {sent}; "
        f"{r.dead_letters_removed} dead-letter message(s) covered"
    )


def cmd_dlq_redrive(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    report = recovery.redrive(
        target.clients,
        target.resources,
        job_id=args.job,
        queue=args.queue,
        dry_run=args.dry_run,
        wake=target.wake,
    )
    if args.json:
        render.print_json(report.to_dict())
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


def cmd_dlq_purge(args: argparse.Namespace) -> int:
    if not args.yes:
        raise UsageError(
            f"dlq purge deletes job {args.job}'s dead-letter messages for good; add --yes"
        )
    target = resolve(args.stack)
    counts = recovery.purge(target.clients, target.resources, job_id=args.job)
    if args.json:
        render.print_json({"job_id": args.job, "deleted": counts})
    else:
        print(
            f"deleted {counts['map']} map and {counts['reduce']} reduce dead-letter "
            f"message(s) of job {args.job}"
        )
    return EXIT_OK


def cmd_retry(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    resumed = recovery.retry(
        target.clients, target.resources, args.job_id, dry_run=args.dry_run, wake=target.wake
    )
    if args.json:
        render.print_json({"dry_run": args.dry_run, **resumed.to_dict()})
        return EXIT_OK
    print(_resumed_text(resumed, "would " if args.dry_run else ""))
    if not args.dry_run:
        print(f"follow it with `python -m submit wait {args.job_id}`", file=sys.stderr)
    return EXIT_OK


def cmd_cancel(args: argparse.Namespace) -> int:
    target = resolve(args.stack)
    cancelled = recovery.cancel(target.clients, target.resources, args.job_id)
    if args.json:
        render.print_json(cancelled)
    elif cancelled["from_state"] == "CANCELLED":
        print(f"job {args.job_id} was already cancelled; nothing changed")
    else:
        print(
            f"job {args.job_id}: {cancelled['from_state']} -> CANCELLED "
            f"({cancelled['done']}/{cancelled['expected']} chunks were done); "
            "workers drop the rest"
        )
    return EXIT_OK
