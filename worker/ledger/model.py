"""What a job and its items can be: states, the moves between them, item
keys and the typed records read from the jobs table.

This module is the one place that spells them. A job moves

    PENDING ──► RUNNING ──► REDUCING ──► SUCCEEDED
       │           ▲ │          │ │
       │           └─┼──────────┘ │    (the next step of a job of several)
       └─────────────┴────────────┴──► FAILED ──► RUNNING | REDUCING (retry)
                                       any open state, and FAILED ──► CANCELLED

A job of zero chunks is created REDUCING. A job of several steps (`steps`)
runs them one after another, `step` counting from 0: the completion of a
step's last partition moves the job to the next step, with that step's
chunk and partition counts, RUNNING again; the last step's finalizes it.
Its items are the map chunks and the reduce partitions of each step
(`Phase`), each DONE, RETRYING (an attempt failed and another will come) or
FAILED (given up), under a key that names its step, phase and number
(`ItemKey`). Adding a state means adding it here: every rule the worker and
`submit` apply asks these types.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

JOB_SK = "JOB"


class UnknownJob(LookupError):
    """A job id that has no job item."""


class JobState(enum.StrEnum):
    PENDING = "PENDING"
    RUNNING = "RUNNING"
    REDUCING = "REDUCING"
    SUCCEEDED = "SUCCEEDED"
    FAILED = "FAILED"
    CANCELLED = "CANCELLED"

    @property
    def terminal(self) -> bool:
        """The job has ended: a follower stops waiting."""
        return self in (JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED)

    @property
    def final(self) -> bool:
        """The job can never change again (a failed job can be retried)."""
        return not TRANSITIONS[self]

    @property
    def takes_work(self) -> bool:
        """Messages of a job in this state are worked on; any other job's
        are dropped unread."""
        return not self.terminal


TRANSITIONS: dict[JobState, frozenset[JobState]] = {
    JobState.PENDING: frozenset(
        {JobState.RUNNING, JobState.REDUCING, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.RUNNING: frozenset({JobState.REDUCING, JobState.FAILED, JobState.CANCELLED}),
    JobState.REDUCING: frozenset(
        {JobState.RUNNING, JobState.SUCCEEDED, JobState.FAILED, JobState.CANCELLED}
    ),
    JobState.FAILED: frozenset({JobState.RUNNING, JobState.REDUCING, JobState.CANCELLED}),
    JobState.SUCCEEDED: frozenset(),
    JobState.CANCELLED: frozenset(),
}


def sources(target: JobState) -> tuple[JobState, ...]:
    """The states a job may move to `target` from."""
    return tuple(s for s in JobState if target in TRANSITIONS[s])


class ItemState(enum.StrEnum):
    DONE = "DONE"
    RETRYING = "RETRYING"
    FAILED = "FAILED"


@dataclass(frozen=True)
class _Counting:
    """How the job item counts one phase's completions."""

    noun: str
    prefix: str
    digits: int
    counter: str  # completions so far
    total: str  # completions the phase needs
    last: str  # the counter's value just before the last completion
    # States in which a completion counts; the state a completion leaves the
    # job in; the state after the phase's last completion, in which the job
    # waits for the next step (the reduce, or being finalized).
    open_states: tuple[JobState, ...]
    counting_state: JobState
    complete_state: JobState
    # The item field with the seconds its worker spent; the job's running
    # sums of them and of the items that had them, over every step (Work).
    seconds_field: str
    work_seconds: str
    work_items: str


class Phase(enum.StrEnum):
    MAP = "map"
    REDUCE = "reduce"

    @property
    def counting(self) -> _Counting:
        return _COUNTING[self]

    @property
    def noun(self) -> str:
        return _COUNTING[self].noun

    @property
    def prefix(self) -> str:
        return _COUNTING[self].prefix


_COUNTING = {
    Phase.MAP: _Counting(
        noun="chunk",
        prefix="CHUNK#",
        digits=6,
        counter="done",
        total="expected",
        last="expected_minus_one",
        open_states=(JobState.PENDING, JobState.RUNNING),
        counting_state=JobState.RUNNING,
        complete_state=JobState.REDUCING,
        seconds_field="map_seconds",
        work_seconds="work_map_s",
        work_items="work_chunks",
    ),
    Phase.REDUCE: _Counting(
        noun="partition",
        prefix="PART#",
        digits=4,
        counter="reduced",
        total="partitions",
        last="partitions_minus_one",
        open_states=(JobState.REDUCING,),
        counting_state=JobState.REDUCING,
        complete_state=JobState.REDUCING,
        seconds_field="reduce_seconds",
        work_seconds="work_reduce_s",
        work_items="work_partitions",
    ),
}

# Set on a job item created with its Work sums at zero: a job created
# before they existed has no such sums to trust, even if completions
# since have added to them.
WORK_TALLIED = "work_tallied"


@dataclass(frozen=True)
class Work:
    """What a job's workers spent on it, summed on the job item by the
    completions that counted its chunks and partitions (completion.py):
    the seconds and the number of the chunks and partitions that recorded
    theirs, over every step."""

    map_s: float = 0.0
    chunks: int = 0
    reduce_s: float = 0.0
    partitions: int = 0

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> Work | None:
        if not item.get(WORK_TALLIED):
            return None
        m, r = _COUNTING[Phase.MAP], _COUNTING[Phase.REDUCE]
        return cls(
            map_s=float(item.get(m.work_seconds, 0)),
            chunks=int(item.get(m.work_items, 0)),
            reduce_s=float(item.get(r.work_seconds, 0)),
            partitions=int(item.get(r.work_items, 0)),
        )

    @property
    def task_s(self) -> float:
        return self.map_s + self.reduce_s


@dataclass(frozen=True, order=True)
class ItemKey:
    """A chunk or a partition of one step of a job, and its sort key in the
    table: CHUNK#000005 in the first step, S1#CHUNK#000005 in the second."""

    phase: Phase
    number: int
    step: int = 0

    @staticmethod
    def prefix_of(phase: Phase, step: int) -> str:
        return phase.prefix if step == 0 else f"S{step}#{phase.prefix}"

    @property
    def sk(self) -> str:
        c = self.phase.counting
        return f"{self.prefix_of(self.phase, self.step)}{self.number:0{c.digits}d}"

    @classmethod
    def parse(cls, sk: str) -> ItemKey:
        step = 0
        if sk.startswith("S") and "#" in sk:
            head, sk = sk.split("#", 1)
            step = int(head[1:])
        for phase in Phase:
            if sk.startswith(phase.prefix):
                return cls(phase, int(sk[len(phase.prefix) :]), step)
        raise ValueError(f"not an item key: {sk!r}")

    @classmethod
    def chunk(cls, number: int, step: int = 0) -> ItemKey:
        return cls(Phase.MAP, number, step)

    @classmethod
    def partition(cls, number: int, step: int = 0) -> ItemKey:
        return cls(Phase.REDUCE, number, step)

    def __str__(self) -> str:
        where = f"step {self.step + 1} " if self.step else ""
        return f"{where}{self.phase.noun} {self.number}"


@dataclass(frozen=True)
class JobRecord:
    """The job item, typed."""

    job_id: str
    job: str
    state: JobState
    params: dict[str, Any]
    partitions: int
    expected: int
    done: int
    reduced: int
    bucket: str
    inputs: int
    input_bytes: int
    max_failures: int
    created_at: str
    updated_at: str
    # The number of FAILED chunks, kept while the job runs (failures.py).
    failed_chunks: int = 0
    # The step under way (from 0) of `steps`; `expected`, `done`,
    # `partitions` and `reduced` count that step's chunks and partitions.
    step: int = 0
    steps: int = 1
    # Each step's partitions, and the chunk size that cuts a later step's
    # input (the previous step's results) into chunks.
    step_partitions: tuple[int, ...] = ()
    chunk_size_bytes: int = 0
    finished_at: str | None = None
    error: str | None = None
    summary: dict[str, Any] | None = None
    result_prefix: str | None = None
    # None for a job created before the job item kept these sums.
    work: Work | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> JobRecord:
        return cls(
            job_id=item["job_id"],
            job=item["job"],
            state=JobState(item["state"]),
            params=item.get("params", {}),
            partitions=int(item["partitions"]),
            expected=int(item["expected"]),
            done=int(item.get("done", 0)),
            reduced=int(item.get("reduced", 0)),
            bucket=item["bucket"],
            inputs=int(item.get("inputs", 0)),
            input_bytes=int(item.get("input_bytes", 0)),
            max_failures=int(item.get("max_failures", 0)),
            created_at=item["created_at"],
            updated_at=item.get("updated_at", item["created_at"]),
            failed_chunks=int(item.get("failed_chunks", 0)),
            step=int(item.get("step", 0)),
            steps=int(item.get("steps", 1)),
            step_partitions=tuple(
                int(p) for p in item.get("step_partitions", [item["partitions"]])
            ),
            chunk_size_bytes=int(item.get("chunk_size_bytes", 0)),
            finished_at=item.get("finished_at"),
            error=item.get("error"),
            summary=item.get("summary"),
            result_prefix=item.get("result_prefix"),
            work=Work.from_item(item),
        )

    def counted(self, phase: Phase) -> int:
        return self.done if phase is Phase.MAP else self.reduced

    def needed(self, phase: Phase) -> int:
        return self.expected if phase is Phase.MAP else self.partitions

    @property
    def phase(self) -> Phase:
        """The phase the job is in, or was in when it stopped."""
        return Phase.MAP if self.done < self.expected else Phase.REDUCE

    @property
    def last_step(self) -> bool:
        return self.step >= self.steps - 1


@dataclass(frozen=True)
class ItemRecord:
    """A chunk or partition item, typed. An item that was never written
    (no attempt failed, none finished) has no record."""

    key: ItemKey
    state: ItemState
    attempts: int = 0
    worker: str | None = None
    last_error: str | None = None
    map_seconds: float | None = None
    reduce_seconds: float | None = None
    summary: dict[str, Any] | None = None

    @classmethod
    def from_item(cls, item: dict[str, Any], sort_key: str) -> ItemRecord:
        return cls(
            key=ItemKey.parse(item[sort_key]),
            state=ItemState(item["state"]),
            attempts=int(item.get("attempts", 0)),
            worker=item.get("worker"),
            last_error=item.get("last_error"),
            map_seconds=item.get("map_seconds"),
            reduce_seconds=item.get("reduce_seconds"),
            summary=item.get("summary"),
        )
