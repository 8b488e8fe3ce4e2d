"""The worker loop: receive a task, do it, make it durable, then let it go.

Processing is kept apart from acknowledgement: a message is deleted only after
its output is in S3 and its completion is in DynamoDB, so a worker killed at
any instant loses nothing (SQS redelivers) and a redelivery is counted once.

Errors are sorted in two: permanent ones (a malformed message, an unknown job,
a missing input) are recorded and the message goes straight to the
dead-letter queue; anything else is recorded and the message comes back after
a backoff, until its last receive, when it goes to the dead-letter queue too.

Before doing any work the worker looks at the job's state, read at most every
few seconds per job: a message of a job that is cancelled, failed or already
done is deleted unread, so a stopped job does not keep the fleet busy. A job
that is failed is read again before each such delete, because `retry` can
bring it back and re-send its chunks.
"""

from __future__ import annotations

import enum
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from worker import storage
from worker.accounting import (
    CANCELLED,
    FAILED,
    SUCCEEDED,
    Accounting,
    Outcome,
    UnknownJob,
    chunk_sk,
    part_sk,
)
from worker.activity import ActivityReport
from worker.ecs import TaskProtection
from worker.jobs import JobError, get_job
from worker.messages import BadMessage, MapTask, ReduceTask, Task, from_json
from worker.queues import DeleteBatcher, QueueConfig, move_to_dead_letter
from worker.reading import ChunkReader
from worker.triggers import trigger_reduce

log = logging.getLogger(__name__)

EXIT_OK = 0
EXIT_RETURNED = 3  # stopped by a signal before the chunk in hand could finish
EXIT_FORCED = 130  # a second signal

PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    BadMessage,
    JobError,
    UnknownJob,
    storage.MissingObject,
)

# Backoff before a failed message is received again: base * 2**(receives-1),
# capped by the queue's visibility timeout.
BACKOFF_BASE_S = 2

# How long a worker trusts a job state it has read. A cancel takes effect
# within this time; a job read once per this time per worker costs far less
# than a request per chunk.
JOB_STATE_TTL_S = 5.0
# States that never change again: trusted for as long as the worker runs.
FINAL_STATES = (CANCELLED, SUCCEEDED)


class Role(enum.StrEnum):
    MAP = "map"
    REDUCE = "reduce"


@dataclass
class Stats:
    started: float = field(default_factory=time.monotonic)
    done: int = 0
    duplicates: int = 0
    dropped: int = 0
    retried: int = 0
    dead_lettered: int = 0

    def line(self) -> str:
        return (
            f"done={self.done} duplicates={self.duplicates} dropped={self.dropped} "
            f"retried={self.retried} dead_lettered={self.dead_lettered} "
            f"uptime={time.monotonic() - self.started:.1f}s"
        )


class Worker:
    def __init__(
        self,
        *,
        role: Role,
        sqs: Any,
        s3: Any,
        accounting: Accounting,
        queue_url: str,
        queue: QueueConfig,
        reduce_queue_url: str | None,
        worker_id: str,
        receive_wait_s: int = 20,
        receive_batch_size: int = 1,
        stop_timeout_s: float = 120,
        wake_reducers: Callable[[int], None] | None = None,
        protection: TaskProtection | None = None,
        activity: ActivityReport | None = None,
        burst: bool = False,
        max_messages: int | None = None,
    ) -> None:
        if role is Role.MAP and not reduce_queue_url:
            raise ValueError("a map worker needs the reduce queue URL")
        self.role = role
        self.sqs = sqs
        self.s3 = s3
        self.accounting = accounting
        self.queue_url = queue_url
        self.queue = queue
        self.reduce_queue_url = reduce_queue_url
        self.worker_id = worker_id
        self.receive_wait_s = receive_wait_s
        self.receive_batch_size = receive_batch_size
        self.stop_timeout_s = stop_timeout_s
        self.wake_reducers = wake_reducers
        self.protection = protection or TaskProtection(agent_uri="")
        self.activity = activity or ActivityReport(None)
        self.burst = burst
        self.max_messages = max_messages
        self.stats = Stats()
        self.deletes = DeleteBatcher(
            sqs, queue_url, max_age_s=min(5.0, queue.visibility_timeout_s / 4)
        )
        # job id -> (state or None for no job item, when read)
        self.job_states: dict[str, tuple[str | None, float]] = {}
        self.stop_requested_at: float | None = None
        self._current: dict[str, Any] | None = None
        self._current_lock = threading.Lock()
        self._extended_at = 0.0
        self._watch_stop = threading.Event()

    # Signals --------------------------------------------------------------

    def request_stop(self) -> None:
        """Called from a signal handler: only sets a flag."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()

    @property
    def stopping(self) -> bool:
        return self.stop_requested_at is not None

    # Loop -----------------------------------------------------------------

    def run(self) -> int:
        watchdog = threading.Thread(target=self._watch, name="heartbeat", daemon=True)
        watchdog.start()
        seen = 0
        try:
            while not self.stopping:
                if self.max_messages is not None and seen >= self.max_messages:
                    break
                # With deletes pending, look without waiting first: an empty
                # answer is the moment to send them before a long poll.
                wait = 0 if self.deletes.pending else self.receive_wait_s
                messages = self.sqs.receive_message(
                    QueueUrl=self.queue_url,
                    MaxNumberOfMessages=self.receive_batch_size,
                    WaitTimeSeconds=wait,
                    AttributeNames=["ApproximateReceiveCount"],
                ).get("Messages", [])
                if not messages:
                    self.deletes.flush()
                    self.protection.release()
                    if self.burst and wait:
                        break
                    continue
                self.protection.hold()
                self.activity.busy()
                for i, message in enumerate(messages):
                    if self.stopping:
                        self._give_back(messages[i:])
                        break
                    try:
                        self.handle(message)
                    except Exception:
                        # Never let one message end the worker: SQS gives
                        # this one back after its visibility timeout.
                        log.exception("message %s: unexpected error", message.get("MessageId"))
                    seen += 1
        finally:
            self._watch_stop.set()
            self.deletes.flush()
            self.protection.release()
        log.info("worker %s stopping: %s", self.worker_id, self.stats.line())
        return EXIT_OK

    def handle(self, message: dict[str, Any]) -> None:
        receives = int(message.get("Attributes", {}).get("ApproximateReceiveCount", 1))
        try:
            task = from_json(message["Body"])
        except BadMessage as e:
            log.warning("message %s: malformed: %s", message.get("MessageId"), e)
            self._dead_letter(message, f"BadMessage: {e}", receives)
            return
        what = self._describe(task)
        state = self._job_state(task.job_id)
        if state is None:
            error = f"UnknownJob: job {task.job_id} has no job item"
            log.warning("%s receive=%d: permanent failure: %s", what, receives, error)
            self._dead_letter(message, error, receives)
            return
        if state == FAILED:
            # `retry` may have reopened it since: look again before dropping.
            state = self._job_state(task.job_id, fresh=True)
        if state in (CANCELLED, FAILED, SUCCEEDED):
            log.info("%s receive=%d: job %s, dropped unread", what, receives, state)
            if state == SUCCEEDED:
                self.stats.duplicates += 1
            else:
                self.stats.dropped += 1
            self.deletes.add(message["ReceiptHandle"])
            return
        self._note_last_receive(task, receives)
        log.info("%s receive=%d: start", what, receives)
        started = time.monotonic()
        with self._current_lock:
            self._current = message
            self._extended_at = started
        try:
            outcome = self._run(task, receives, started)
        except PERMANENT_ERRORS as e:
            error = f"{type(e).__name__}: {e}"
            log.warning("%s receive=%d: permanent failure: %s", what, receives, error)
            if not isinstance(e, UnknownJob):
                self._record_failure(task, receives, error, final=True)
            self._dead_letter(message, error, receives)
            return
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            final = self.queue.max_receive_count is not None and (
                receives >= self.queue.max_receive_count
            )
            log.warning(
                "%s receive=%d: failed%s: %s",
                what,
                receives,
                " for the last time" if final else "",
                error,
                exc_info=not isinstance(e, OSError),
            )
            self._record_failure(task, receives, error, final=final)
            if final:
                self._dead_letter(message, error, receives)
            else:
                self._back_off(message, receives)
            return
        finally:
            with self._current_lock:
                self._current = None
        if outcome is Outcome.DROPPED:
            self.job_states.pop(task.job_id, None)
            self.stats.dropped += 1
        elif outcome is Outcome.DUPLICATE:
            self.stats.duplicates += 1
        else:
            self.stats.done += 1
        self.deletes.add(message["ReceiptHandle"])
        log.info(
            "%s receive=%d: %s in %.2fs", what, receives, outcome.value, time.monotonic() - started
        )

    def _job_state(self, job_id: str, *, fresh: bool = False) -> str | None:
        """The job's state as read at most JOB_STATE_TTL_S ago (final states
        for good); None if the job has no item."""
        now = time.monotonic()
        known = self.job_states.get(job_id)
        if known is not None and not fresh:
            state, read_at = known
            if state in FINAL_STATES or now - read_at < JOB_STATE_TTL_S:
                return state
        record = self.accounting.get_job(job_id)
        state = None if record is None else str(record["state"])
        if len(self.job_states) > 1000:
            self.job_states = {
                j: v for j, v in self.job_states.items() if now - v[1] < JOB_STATE_TTL_S
            }
        self.job_states[job_id] = (state, now)
        return state

    def _note_last_receive(self, task: Task, receives: int) -> None:
        """On a redelivered message's last receive, name this worker as its
        holder: if it vanishes now, SQS moves the message on by itself."""
        limit = self.queue.max_receive_count
        if limit is None or receives < 2 or receives < limit:
            return
        sk = chunk_sk(task.chunk) if isinstance(task, MapTask) else part_sk(task.partition)
        try:
            self.accounting.note_last_receive(
                task.job_id, sk, attempts=receives, worker_id=self.worker_id
            )
        except Exception as e:  # a note, not a condition for doing the work
            log.warning("job %s: could not note the last receive: %s", task.job_id, e)

    # Work -----------------------------------------------------------------

    def _run(self, task: Task, receives: int, started: float) -> Outcome:
        if isinstance(task, MapTask):
            if self.role is not Role.MAP:
                raise BadMessage("a map task on the reduce queue")
            return self._map(task, receives, started)
        if self.role is not Role.REDUCE:
            raise BadMessage("a reduce task on the map queue")
        return self._reduce(task)

    def _map(self, task: MapTask, receives: int, started: float) -> Outcome:
        job = get_job(task.job)
        params = job.check_params(task.params)

        def fetch(bucket: str, key: str, start: int, end: int) -> bytes:
            data = storage.get_range(self.s3, bucket, key, start, end)
            if len(data) != max(0, end - start):
                # Messages never ask past an input's end; this one disagrees
                # with the object, and asking again will not change that.
                raise storage.MissingObject(
                    f"s3://{bucket}/{key} bytes {start}-{end - 1}: the object ends "
                    f"{end - start - len(data)} byte(s) short of the range"
                )
            return data

        reader = ChunkReader(fetch, task.pieces, task.bucket)
        pieces = (reader.read(p) for p in task.pieces)
        outputs = job.map_chunk(pieces, params, task.partitions)
        for r, output in enumerate(outputs):
            storage.put_map_output(self.s3, task.bucket, task.job_id, task.chunk, r, output)
        outcome = self.accounting.complete_chunk(
            task.job_id,
            task.chunk,
            attempts=receives,
            worker_id=self.worker_id,
            map_seconds=time.monotonic() - started,
        )
        if outcome in (Outcome.LAST, Outcome.RETRIGGER):
            record = self.accounting.get_job(task.job_id)
            if record is None:
                raise UnknownJob(f"job {task.job_id} has no job item")
            assert self.reduce_queue_url is not None
            trigger_reduce(
                self.sqs,
                self.reduce_queue_url,
                job_id=task.job_id,
                job=task.job,
                params=task.params,
                partitions=task.partitions,
                chunks=int(record["expected"]),
                bucket=task.bucket,
                wake=self.wake_reducers,
            )
        return outcome

    def _reduce(self, task: ReduceTask) -> Outcome:
        job = get_job(task.job)
        params = job.check_params(task.params)
        outputs = (
            storage.get_json(self.s3, task.bucket, storage.map_key(task.job_id, c, task.partition))
            for c in range(task.chunks)
        )
        part = job.reduce_partition(outputs, params)
        storage.put_json(
            self.s3, task.bucket, storage.result_key(task.job_id, task.partition), part
        )
        outcome = self.accounting.complete_partition(
            task.job_id, task.partition, summary=job.summarize(part), worker_id=self.worker_id
        )
        if outcome in (Outcome.LAST, Outcome.RETRIGGER):
            summaries = [
                p["summary"] for p in self.accounting.partition_items(task.job_id) if "summary" in p
            ]
            summary = job.merge_summaries(summaries)
            self.accounting.finalize(
                task.job_id,
                summary,
                result_prefix=f"s3://{task.bucket}/{storage.result_prefix(task.job_id)}",
            )
            log.info("job %s: succeeded", task.job_id)
        return outcome

    # Failure paths --------------------------------------------------------

    def _record_failure(self, task: Task, receives: int, error: str, *, final: bool) -> None:
        try:
            if isinstance(task, MapTask):
                failed = self.accounting.record_chunk_failure(
                    task.job_id,
                    task.chunk,
                    attempts=receives,
                    error=error,
                    worker_id=self.worker_id,
                    final=final,
                )
            else:
                failed = self.accounting.record_partition_failure(
                    task.job_id,
                    task.partition,
                    attempts=receives,
                    error=error,
                    worker_id=self.worker_id,
                    final=final,
                )
        except Exception as e:  # the message's fate must not depend on this write
            log.warning("job %s: could not record failure: %s", task.job_id, e)
            return
        if failed:
            self.job_states[task.job_id] = (FAILED, time.monotonic())
            log.warning("job %s: failed", task.job_id)

    def _dead_letter(self, message: dict[str, Any], reason: str, receives: int) -> None:
        self.stats.dead_lettered += 1
        if self.queue.dlq_url is None:
            log.error(
                "no dead-letter queue configured; message %s left to expire",
                message.get("MessageId"),
            )
            return
        move_to_dead_letter(
            self.sqs,
            queue_url=self.queue_url,
            dlq_url=self.queue.dlq_url,
            message=message,
            reason=reason,
            receives=receives,
        )

    def _back_off(self, message: dict[str, Any], receives: int) -> None:
        self.stats.retried += 1
        delay = min(self.queue.visibility_timeout_s, BACKOFF_BASE_S * 2 ** (receives - 1))
        self.sqs.change_message_visibility(
            QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=delay
        )

    def _give_back(self, messages: list[dict[str, Any]]) -> None:
        for message in messages:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=message["ReceiptHandle"], VisibilityTimeout=0
            )

    # Heartbeat and stop watchdog -----------------------------------------------

    def _watch(self) -> None:
        """Extend the visibility of the message in hand while it runs; after
        a stop request, give it back at once if it cannot finish in time.
        Also renews the task's scale-in protection and reports activity."""
        heartbeat_s = max(1.0, self.queue.visibility_timeout_s / 3)
        # Leave time to hand the message back and exit before SIGKILL.
        grace_s = min(10.0, self.stop_timeout_s / 4)
        while not self._watch_stop.wait(0.2):
            self.protection.renew_if_due()
            self.activity.tick(holding=self._current is not None)
            with self._current_lock:
                message = self._current
                if message is None:
                    continue
                now = time.monotonic()
                stop_at = self.stop_requested_at
                if stop_at is not None and now - stop_at >= self.stop_timeout_s - grace_s:
                    self._abandon(message)
                if now - self._extended_at >= heartbeat_s:
                    self._extended_at = now
                    try:
                        self.sqs.change_message_visibility(
                            QueueUrl=self.queue_url,
                            ReceiptHandle=message["ReceiptHandle"],
                            VisibilityTimeout=self.queue.visibility_timeout_s,
                        )
                    except Exception as e:
                        log.warning("heartbeat failed: %s", e)

    def _abandon(self, message: dict[str, Any]) -> None:
        log.warning(
            "worker %s: stop timeout near, giving message %s back: %s",
            self.worker_id,
            message.get("MessageId"),
            self.stats.line(),
        )
        try:
            self._give_back([message])
            self.deletes.flush()
        finally:
            os._exit(EXIT_RETURNED)

    @staticmethod
    def _describe(task: Task) -> str:
        if isinstance(task, MapTask):
            return f"job {task.job_id} chunk {task.chunk}"
        return f"job {task.job_id} partition {task.partition}"
