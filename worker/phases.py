"""The MapReduce side of a worker: what a map or reduce message means.

`MapReduce.handle` decodes a message, looks at its job, does the work, makes
it durable, tells the ledger, starts the next phase when the ledger says so,
and answers the consumer with a verdict (worker.consumer):

- a map task reads its chunk's byte ranges line-aligned (from S3, or, in a
  worker the local fleet started, from the local files a local job names:
  anywhere else a message naming a local file is refused as malformed, so
  no message can make a container read its own files), runs the job's map
  and combine, writes one output per partition to S3, its records sorted by
  key (deterministic keys, so a second run overwrites its own output), and
  counts the chunk once; the completion that makes the count complete sends
  the reduce messages;
- a reduce task merges its partition of every map output in key order
  (worker.records: a block per map output in memory, at most a fan-in of
  them open, more spilled to local disk first), runs the reducer one key at
  a time, streams its result to S3 through a spooled temporary file, and
  counts the partition once; the last one finalizes the job or, in a job of
  several steps, starts the next step (worker.steps).

Before any work the handler looks at the job's state, read at most every few
seconds per job: a message of a job that takes no more work (cancelled,
failed, done) is deleted unread, so a stopped job does not keep the fleet
busy. A failed job is read again before such a delete, because `retry` can
bring it back and send its chunks again.

Errors are sorted in two: permanent ones (a malformed message, an unknown
job, a missing input, an input the stack may not read) are recorded and the
message is dead-lettered at once; anything else is recorded and the message
comes back after a backoff, until its last receive, when it is
dead-lettered too.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator
from functools import partial
from typing import TYPE_CHECKING

from worker import records, storage
from worker.consumer import DeadLetter, Delete, Delivery, Retry, Verdict
from worker.jobs import JobError, get_job
from worker.jobs.base import Summary
from worker.ledger import JobState, Ledger, LedgerWriteRefused, Outcome, Phase, UnknownJob
from worker.messages import BadMessage, MapTask, ReduceTask, Task, from_json
from worker.reading import ChunkReader, CorruptInput, LocalFileChanged, read_file_range
from worker.steps import start_next_step
from worker.triggers import trigger_reduce

if TYPE_CHECKING:
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

PERMANENT_ERRORS: tuple[type[BaseException], ...] = (
    BadMessage,
    JobError,
    UnknownJob,
    storage.MissingObject,
    storage.AccessDenied,
    records.BadRecord,
    CorruptInput,
    LedgerWriteRefused,
)

# A reduce result is written to a temporary file and uploaded from there:
# in memory up to this size, on the temporary directory beyond it.
RESULT_SPOOL_BYTES = 8 << 20

# Backoff before a failed message is received again: base * 2**(receives-1)
# (the consumer caps it at the queue's visibility timeout).
BACKOFF_BASE_S = 2

# How long a worker trusts a job state it has read. A cancel takes effect
# within this time; a job read once per this time per worker costs far less
# than a request per chunk.
JOB_STATE_TTL_S = 5.0


def _read_local(path: str, size: int, start: int, end: int) -> bytes:
    """A local input's bytes; a file that is gone, changed or unreadable is
    a permanent failure, as a missing object is."""
    try:
        return read_file_range(path, size, start, end)
    except (FileNotFoundError, IsADirectoryError, LocalFileChanged) as e:
        raise storage.MissingObject(str(e)) from e
    except PermissionError as e:
        raise storage.AccessDenied(f"{path}: {e.strerror}") from e


class JobStates:
    """Job states as read at most JOB_STATE_TTL_S ago; final ones for good.
    A state is also known from a write conditioned on it: a completion
    counted (worker.ledger.completion) saw its job open, so a worker busy
    with one job's chunks reads its state only when it starts on them."""

    def __init__(self, ledger: Ledger, clock: Callable[[], float] = time.monotonic) -> None:
        self.ledger = ledger
        self.clock = clock
        self.known: dict[str, tuple[JobState | None, float]] = {}

    def get(self, job_id: str, *, fresh: bool = False) -> JobState | None:
        """None if the job has no item."""
        now = self.clock()
        known = self.known.get(job_id)
        if known is not None and not fresh:
            state, read_at = known
            if (state is not None and state.final) or now - read_at < JOB_STATE_TTL_S:
                return state
        record = self.ledger.job(job_id)
        state = None if record is None else record.state
        if len(self.known) > 1000:
            self.known = {j: v for j, v in self.known.items() if now - v[1] < JOB_STATE_TTL_S}
        self.known[job_id] = (state, now)
        return state

    def set(self, job_id: str, state: JobState) -> None:
        self.known[job_id] = (state, self.clock())

    def forget(self, job_id: str) -> None:
        self.known.pop(job_id, None)


class MapReduce:
    """A handler for one phase's queue (see worker.consumer.Handler)."""

    def __init__(
        self,
        *,
        phase: Phase,
        s3: S3Client,
        ledger: Ledger,
        worker_id: str,
        sqs: SQSClient | None = None,
        reduce_queue_url: str | None = None,
        map_queue_url: str | None = None,
        wake_reducers: Callable[[int], object] | None = None,
        wake_mappers: Callable[[int], object] | None = None,
        local_files: bool = False,
    ) -> None:
        if phase is Phase.MAP and not (sqs and reduce_queue_url):
            raise ValueError("a map worker needs SQS and the reduce queue URL")
        self.phase = phase
        self.s3 = s3
        self.ledger = ledger
        self.worker_id = worker_id
        self.sqs = sqs
        self.reduce_queue_url = reduce_queue_url
        self.map_queue_url = map_queue_url
        self.wake_reducers = wake_reducers
        self.wake_mappers = wake_mappers
        # Only a worker of the local fleet reads local files (worker.names).
        self.local_files = local_files
        self.states = JobStates(ledger)

    def handle(self, delivery: Delivery) -> Verdict:
        try:
            task = from_json(delivery.body)
            if task.phase is not self.phase:
                raise BadMessage(f"a {task.phase} task on the {self.phase} queue")
        except BadMessage as e:
            log.warning("message %s: malformed: %s", delivery.message_id, e)
            return DeadLetter(f"BadMessage: {e}")
        receives = delivery.receives
        state = self.states.get(task.job_id)
        if state is None:
            error = f"UnknownJob: job {task.job_id} has no job item"
            log.warning("%s receive=%d: permanent failure: %s", task, receives, error)
            return DeadLetter(error)
        if state is JobState.FAILED:
            # `retry` may have reopened it since: look again before dropping.
            state = self.states.get(task.job_id, fresh=True) or state
        if not state.takes_work:
            log.info("%s receive=%d: job %s, dropped unread", task, receives, state)
            return Delete("duplicate" if state is JobState.SUCCEEDED else "dropped")
        if delivery.last_receive and receives >= 2:
            self._note_last_receive(task, receives)
        log.info("%s receive=%d: start", task, receives)
        started = time.monotonic()
        try:
            outcome = self._run(task, receives, started)
        except PERMANENT_ERRORS as e:
            error = f"{type(e).__name__}: {e}"
            log.warning("%s receive=%d: permanent failure: %s", task, receives, error)
            if not isinstance(e, UnknownJob):
                self._record_failure(task, receives, error, final=True)
            return DeadLetter(error)
        except Exception as e:
            error = f"{type(e).__name__}: {e}"
            final = delivery.last_receive
            log.warning(
                "%s receive=%d: failed%s: %s",
                task,
                receives,
                " for the last time" if final else "",
                error,
                exc_info=not isinstance(e, OSError),
            )
            self._record_failure(task, receives, error, final=final)
            if final:
                return DeadLetter(error)
            return Retry(BACKOFF_BASE_S * 2 ** (receives - 1))
        log.info(
            "%s receive=%d: %s in %.2fs", task, receives, outcome.value, time.monotonic() - started
        )
        if outcome is Outcome.DROPPED:
            self.states.forget(task.job_id)
            return Delete("dropped")
        if outcome in (Outcome.COUNTED, Outcome.LAST):
            # What the counting transaction, conditioned on the job being
            # open, has just written.
            counting = task.item.phase.counting
            self.states.set(
                task.job_id,
                counting.counting_state if outcome is Outcome.COUNTED else counting.complete_state,
            )
        return Delete("duplicate" if outcome is Outcome.DUPLICATE else "done")

    def _note_last_receive(self, task: Task, receives: int) -> None:
        """On a redelivered message's last receive, name this worker as its
        holder: if it vanishes now, SQS moves the message on by itself."""
        try:
            self.ledger.note_last_receive(
                task.job_id, task.item, attempts=receives, worker_id=self.worker_id
            )
        except Exception as e:  # a note, not a condition for doing the work
            log.warning("job %s: could not note the last receive: %s", task.job_id, e)

    def _record_failure(self, task: Task, receives: int, error: str, *, final: bool) -> None:
        try:
            failed = self.ledger.record_failure(
                task.job_id,
                task.item,
                attempts=receives,
                error=error,
                worker_id=self.worker_id,
                final=final,
            )
        except Exception as e:  # the message's fate must not depend on this write
            log.warning("job %s: could not record failure: %s", task.job_id, e)
            return
        if failed:
            self.states.set(task.job_id, JobState.FAILED)

    # Work stopped from outside (worker.isolation) ---------------------------

    def abandoned(self, delivery: Delivery) -> Verdict | None:
        """While the work on `delivery` runs in the work process: Delete if its
        job takes no more work (cancelled, failed or done since), else None."""
        try:
            task = from_json(delivery.body)
        except BadMessage:
            return None
        state = self.states.get(task.job_id)
        if state is JobState.FAILED:
            state = self.states.get(task.job_id, fresh=True) or state
        if state is None or state.takes_work:
            return None
        log.info("%s receive=%d: job %s, work in hand stopped", task, delivery.receives, state)
        return Delete("duplicate" if state is JobState.SUCCEEDED else "dropped")

    def stopped(self, delivery: Delivery, error: str) -> Verdict:
        """The work on `delivery` was stopped before it answered (past the time
        limit, or its process died): a failed attempt like any other, retried
        after the backoff until its queue's last receive."""
        try:
            task = from_json(delivery.body)
        except BadMessage as e:
            return DeadLetter(f"BadMessage: {e}")
        receives, final = delivery.receives, delivery.last_receive
        log.warning(
            "%s receive=%d: failed%s: %s",
            task,
            receives,
            " for the last time" if final else "",
            error,
        )
        self._record_failure(task, receives, error, final=final)
        if final:
            return DeadLetter(error)
        return Retry(BACKOFF_BASE_S * 2 ** (receives - 1))

    # Work -------------------------------------------------------------------

    def _run(self, task: Task, receives: int, started: float) -> Outcome:
        if isinstance(task, MapTask):
            return self._map(task, receives, started)
        return self._reduce(task, started)

    def _map(self, task: MapTask, receives: int, started: float) -> Outcome:
        params = get_job(task.job).check_params(task.params)
        job = get_job(task.job, params)

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

        local = next((p.path for p in task.pieces if p.path is not None), None)
        if local is not None and not self.local_files:
            raise BadMessage(
                f"the chunk names the local file {local}, which only a worker of a local "
                "fleet reads; submit to a deployed stack uploads local inputs instead"
            )
        reader = ChunkReader(fetch, task.pieces, task.bucket, read_local=_read_local)
        pieces = (reader.read(p) for p in task.pieces)
        outputs = job.map_chunk(task.step, pieces, task.partitions)
        for r, output in enumerate(outputs):
            storage.put_map_output(
                self.s3,
                task.bucket,
                task.job_id,
                task.chunk,
                r,
                records.pack(output),
                step=task.step,
            )
        completion = self.ledger.completion(
            task.job_id,
            task.item,
            attempts=receives,
            worker=self.worker_id,
            map_seconds=round(time.monotonic() - started, 3),
        )
        if completion.outcome.starts_next_phase:
            record = completion.job or self.ledger.job(task.job_id)
            if record is None:
                raise UnknownJob(f"job {task.job_id} has no job item")
            assert self.sqs is not None and self.reduce_queue_url is not None
            trigger_reduce(self.sqs, self.reduce_queue_url, record, wake=self.wake_reducers)
        return completion.outcome

    def _reduce(self, task: ReduceTask, started: float) -> Outcome:
        params = get_job(task.job).check_params(task.params)
        job = get_job(task.job, params)
        last_step = task.step >= len(job.steps()) - 1
        sources = [
            partial(
                storage.stream_blocks,
                self.s3,
                task.bucket,
                storage.map_key(task.job_id, c, task.partition, task.step),
                records.BLOCK_BYTES,
            )
            for c in range(task.chunks)
        ]
        summary = Summary()

        def summarized() -> Iterator[records.Record]:
            for key, result in job.reduce_runs(task.step, sources):
                summary.add(job.weight(key, result))
                yield key, result

        with tempfile.SpooledTemporaryFile(max_size=RESULT_SPOOL_BYTES) as out:
            records.write_stream(out, summarized())
            out.seek(0)
            storage.put_stream(
                self.s3,
                task.bucket,
                storage.result_key(task.job_id, task.partition, task.step),
                out,
                # A step's results before the last are intermediate.
                tagging=None if last_step else storage.MAP_OUTPUT_TAGGING,
            )
        own_summary = summary.to_dict()
        completion = self.ledger.completion(
            task.job_id,
            task.item,
            # A job of one partition: this is its last one.
            likely_last=task.partitions == 1,
            summary=own_summary,
            worker=self.worker_id,
            reduce_seconds=round(time.monotonic() - started, 3),
        )
        outcome = completion.outcome
        if outcome.starts_next_phase:
            if last_step:
                # The step's partitions' summaries; a job of one partition's
                # is this one (as stored: JSON's types).
                summaries = (
                    [json.loads(json.dumps(own_summary))]
                    if task.partitions == 1
                    else self.ledger.summaries(task.job_id, task.step)
                )
                summary_all = job.merge_summaries(summaries)
                self.ledger.finalize(
                    task.job_id,
                    summary_all,
                    result_prefix=(
                        f"s3://{task.bucket}/{storage.result_prefix(task.job_id, task.step)}"
                    ),
                )
                log.info("job %s: succeeded", task.job_id)
            else:
                record = completion.job or self.ledger.job(task.job_id)
                if record is None:
                    raise UnknownJob(f"job {task.job_id} has no job item")
                if self.sqs is None or self.map_queue_url is None:
                    raise RuntimeError("a reducer of a job of several steps needs the map queue")
                start_next_step(
                    s3=self.s3,
                    sqs=self.sqs,
                    map_queue_url=self.map_queue_url,
                    ledger=self.ledger,
                    job=record,
                    from_step=task.step,
                    wake=self.wake_mappers,
                )
        return outcome
