"""The job contract, as MapReduce users know it from mrjob and Hadoop
streaming.

A job is a class with a `name`, registered with `@register`:

- `mapper(self, line, params)` yields `(key, value)` pairs for each line of
  input: keys are strings, values are JSON values (numbers, strings, lists,
  objects, true/false/null).
- `mapper_init(self, input_name, params)`, optional, is called before the
  first line of each input piece a worker maps: the input's name as the user
  gave it, so that a job can know what it reads.
- `combiner(self, key, values)`, optional, runs in the map worker on one
  chunk's values of a key and returns one value of the mapper's kind.
  Without one, no combining happens.
- `reducer(self, key, values)` receives every value mapped for the key
  across the whole job, as an iterator, and returns the key's result.

Values reach a reducer streamed: each map output is written sorted by key
and a reducer merges them (worker.records), so its memory is what it keeps
of one key, never its partition. The job's result is an object key ->
result, sorted by key (`merge_results` may give it another shape).

Parameters are declared (`parameters`, a tuple of `Param`) and checked by
`submit` before anything is queued; every method sees them as `self.params`
and mappers also as their `params` argument.

A job of several steps returns them from `steps()`, each a `Step`, as
mrjob's `steps()` does: the first step's mapper reads lines, each later
step's mapper reads the previous step's results as `mapper(key, value,
params)`. A job may replace the generic map of a step with a faster kernel
(`map_chunk`) that gives the same records, as wordcount does.
"""

from __future__ import annotations

import heapq
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from operator import itemgetter
from typing import Any, ClassVar

from worker.reading import PieceData, split_lines
from worker.records import MERGE_FAN_IN, Record, Source, bytes_blocks, decode, grouped, merge

Params = dict[str, Any]

# Values a map worker buffers for one key before it combines them: memory
# per key stays bounded, and a combiner that folds pairwise costs little.
COMBINE_BATCH = 256


class JobError(ValueError):
    """A job that cannot run as asked: unknown name or invalid parameters."""


_REQUIRED = object()


@dataclass(frozen=True)
class Param:
    """A job parameter: `run --param NAME=VALUE`.

    `type` is str, int, float or bool; a value given as text is converted.
    Without a `default` the parameter is required. `check`, if given,
    returns an error message for a value it refuses, or None.
    """

    name: str
    type: type
    help: str
    default: Any = _REQUIRED
    check: Callable[[Any], str | None] | None = None

    @property
    def required(self) -> bool:
        return self.default is _REQUIRED

    def convert(self, job: str, value: Any) -> Any:
        where = f"job {job!r}: parameter {self.name!r}"
        value = self._typed(where, value)
        if self.check is not None:
            problem = self.check(value)
            if problem:
                raise JobError(f"{where}: {problem}")
        return value

    def _typed(self, where: str, value: Any) -> Any:
        kind = self.type.__name__
        if self.type is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in ("true", "yes", "1", "on"):
                return True
            if text in ("false", "no", "0", "off"):
                return False
            raise JobError(f"{where}: expected true or false, got {value!r}")
        if self.type in (int, float):
            if isinstance(value, bool):
                raise JobError(f"{where}: expected {kind}, got {value!r}")
            try:
                return self.type(value)
            except (TypeError, ValueError):
                raise JobError(f"{where}: expected {kind}, got {value!r}") from None
        if self.type is str:
            if not isinstance(value, str):
                raise JobError(f"{where}: expected text, got {value!r}")
            return value
        raise JobError(f"{where}: unsupported type {kind}")

    def describe(self) -> str:
        default = "required" if self.required else f"default {self.default!r}"
        return f"{self.name} ({self.type.__name__}, {default}): {self.help}"


Mapper = Callable[..., Iterable[tuple[str, Any]]]
Combiner = Callable[[str, Iterable[Any]], Any]
Reducer = Callable[[str, Iterator[Any]], Any]


@dataclass(frozen=True)
class Step:
    """One MapReduce step. The first step's `mapper(line, params)` reads
    lines of input; a later step's `mapper(key, value, params)` reads the
    previous step's results. `partitions`, if set, fixes this step's reduce
    partitions (1 for a global top-n); otherwise `run --partitions` does."""

    mapper: Mapper
    reducer: Reducer
    combiner: Combiner | None = None
    mapper_init: Callable[[str, Params], None] | None = None
    partitions: int | None = None


def partition_of(key: str, partitions: int) -> int:
    """A stable partition for a key: the same in every process (unlike hash())."""
    if partitions == 1:
        return 0
    return zlib.crc32(key.encode("utf-8", "surrogatepass")) % partitions


def sorted_partitions(records: Iterable[Record], partitions: int) -> list[list[Record]]:
    """Records split by partition, each sorted by key; records of one key
    keep their order."""
    out: list[list[Record]] = [[] for _ in range(partitions)]
    if partitions == 1:
        out[0].extend(records)
    else:
        for record in records:
            out[partition_of(record[0], partitions)].append(record)
    for part in out:
        part.sort(key=_first)
    return out


_first = itemgetter(0)


def top_items(counts: dict[str, Any], n: int = 10) -> list[list[Any]]:
    """The n largest values, ties broken by key, as [key, value] pairs."""
    best = heapq.nsmallest(n, counts.items(), key=lambda kv: (-kv[1], kv[0]))
    return [[k, v] for k, v in best]


class Summary:
    """A partition's summary, built one result at a time in constant memory:
    the total of its results' weights (or its key count, when some result
    has none), its distinct keys, its ten heaviest."""

    def __init__(self) -> None:
        self.total: float = 0
        self.distinct = 0
        self.weighed = True
        self.top: list[tuple[float, str]] = []  # (-weight, label), at most 10
        self.worst: tuple[float, str] = (0, "")  # the largest of `top`

    def add(self, weight: tuple[str, float] | None) -> None:
        self.distinct += 1
        if weight is None:
            self.weighed = False
            return
        label, w = weight
        self.total += w
        if not w:
            return
        entry = (-w, label)
        if len(self.top) < 10:
            self.top.append(entry)
            self.worst = max(self.top)
        elif entry < self.worst:
            self.top[self.top.index(self.worst)] = entry
            self.worst = max(self.top)

    def to_dict(self) -> dict[str, Any]:
        best = sorted(self.top) if self.weighed else []
        return {
            "total": self.total if self.weighed else self.distinct,
            "distinct": self.distinct,
            "top": [[_storable(label), -w] for w, label in best],
        }


def _storable(label: str) -> str:
    """A label DynamoDB takes: a key may hold a lone surrogate (a job's own
    key, or a name that is not UTF-8), which no DynamoDB item can; it is
    shown as \\udXXX."""
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        return label.encode("utf-8", "backslashreplace").decode("utf-8")
    return label


class Job:
    """A MapReduce job; see the module's docstring for the contract."""

    name: ClassVar[str]
    description: ClassVar[str] = ""
    parameters: ClassVar[tuple[Param, ...]] = ()
    # What `status` calls the summary's two numbers: the total of the
    # results' weights (`weight`) and the number of keys; None shows none.
    summary_names: ClassVar[tuple[str, str] | None] = ("total", "keys")

    def __init__(self, params: Params | None = None) -> None:
        self.params: Params = params or {}

    # The contract ------------------------------------------------------------

    def mapper(self, line: str, params: Params) -> Iterable[tuple[str, Any]]:
        raise NotImplementedError(f"job {self.name!r} defines no mapper")

    def mapper_init(self, input_name: str, params: Params) -> None:
        """Called before the first line of each input piece."""

    def combiner(self, key: str, values: Iterable[Any]) -> Any:
        """Optional: one value standing for `values`, all mapped from one
        chunk for `key`. Drover may call it any number of times (zero
        included) on any grouping of a key's values, in any order, and feed
        its results back to it with other values: the reducer must give the
        same result whether or not it ran. So it must return a value of the
        kind the mapper yields and be associative and commutative (a sum, a
        max, a set union); a mean is not, a (sum, count) pair is. A job that
        does not define it gets no combining."""
        raise NotImplementedError

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        raise NotImplementedError(f"job {self.name!r} defines no reducer")

    def steps(self) -> Sequence[Step]:
        """The job's steps; by default one, of the methods above."""
        return [
            Step(
                mapper=self.mapper,
                reducer=self.reducer,
                combiner=self._bound_combiner(),
                mapper_init=self.mapper_init,
            )
        ]

    def _bound_combiner(self) -> Combiner | None:
        return None if type(self).combiner is Job.combiner else self.combiner

    # Parameters ---------------------------------------------------------------

    def check_params(self, params: Params) -> Params:
        """Validated, typed parameters with defaults filled in; raise
        JobError naming the parameter at fault."""
        declared = {p.name: p for p in self.parameters}
        unknown = sorted(set(params) - set(declared))
        if unknown:
            takes = ", ".join(declared) or "no parameters"
            raise JobError(
                f"job {self.name!r}: unknown parameter {unknown[0]!r} (it takes {takes})"
            )
        checked: Params = {}
        for p in self.parameters:
            if p.name in params:
                checked[p.name] = p.convert(self.name, params[p.name])
            elif p.required:
                raise JobError(
                    f"job {self.name!r}: parameter {p.name!r} is required (--param {p.name}=VALUE)"
                )
            else:
                checked[p.name] = p.default
        return checked

    # The data path ------------------------------------------------------------

    def step_partitions(self, partitions: int) -> list[int]:
        """Each step's reduce partitions, given `run --partitions`."""
        return [s.partitions or partitions for s in self.steps()]

    def map_chunk(
        self, step: int, pieces: Iterable[PieceData], partitions: int
    ) -> list[list[Record]]:
        """A chunk's records for each partition, sorted by key: the
        mapper's pairs, combined per key when the step has a combiner."""
        spec = self.steps()[step]
        pairs = self._mapped(step, spec, pieces)
        if spec.combiner is not None:
            pairs = _combined(pairs, spec.combiner)
        return sorted_partitions(_checked_keys(pairs), partitions)

    def _mapped(self, step: int, spec: Step, pieces: Iterable[PieceData]) -> Iterator[Record]:
        params = self.params
        mapper = spec.mapper
        for piece in pieces:
            if step == 0:
                if spec.mapper_init is not None:
                    spec.mapper_init(piece.name, params)
                for raw in split_lines(piece.data):
                    yield from mapper(raw.decode("utf-8", "replace"), params)
            else:
                for key, value in decode(bytes_blocks(piece.data)):
                    yield from mapper(key, value, params)

    def reduce_partition(self, step: int, records: Iterable[Record]) -> Iterator[Record]:
        """(key, result) for the sorted records of a partition, one key at a
        time."""
        reducer = self.steps()[step].reducer
        for key, values in grouped(records):
            yield key, reducer(key, values)

    def reduce_runs(
        self, step: int, runs: Sequence[Source], *, fan_in: int = MERGE_FAN_IN
    ) -> Iterator[Record]:
        """(key, result) for a partition given as its sorted runs (one per
        map output): their merge, reduced. A job whose reducer only adds
        numbers may merge them summed at once (wordcount does)."""
        return self.reduce_partition(step, merge(runs, fan_in=fan_in))

    def weight(self, key: str, result: Any) -> tuple[str, float] | None:
        """What `status` counts for one result: a number result counts as
        itself; anything else counts keys only."""
        if isinstance(result, int | float) and not isinstance(result, bool):
            return key, result
        return None

    def merge_results(self, records: Iterable[Record]) -> Any:
        """The job's result from its (key, result) records in key order."""
        return dict(records)

    def merge_summaries(self, summaries: Iterable[dict[str, Any]]) -> dict[str, Any]:
        total: float = 0
        distinct = 0
        top: list[tuple[Any, str]] = []
        for s in summaries:
            total += s.get("total", 0)
            distinct += s.get("distinct", 0)
            top.extend((count, key) for key, count in s.get("top", []))
        best = heapq.nsmallest(10, top, key=lambda t: (-t[0], t[1]))
        merged = {"total": total, "distinct": distinct, "top": [[k, c] for c, k in best]}
        return {**merged, "names": list(self.summary_names or ())}


def _checked_keys(pairs: Iterable[Record]) -> Iterator[Record]:
    for pair in pairs:
        if type(pair[0]) is not str:
            raise JobError(f"a mapper yielded the key {pair[0]!r}: keys must be strings")
        yield pair


def _combined(pairs: Iterable[Record], combiner: Combiner) -> Iterator[Record]:
    buffered: defaultdict[str, list[Any]] = defaultdict(list)
    for key, value in pairs:
        values = buffered[key]
        values.append(value)
        if len(values) >= COMBINE_BATCH:
            buffered[key] = [combiner(key, values)]
    for key, values in buffered.items():
        yield key, combiner(key, values)
