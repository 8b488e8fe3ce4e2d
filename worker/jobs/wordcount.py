"""wordcount: how often each word occurs.

The reference is `Counter(re.findall(r"\\w+", text.lower()))` over each file
decoded as UTF-8 with errors="replace". The kernel below gives exactly that
result, several times faster, by counting the raw bytes:

1. One bytes.translate turns every ASCII byte that cannot be in a word into a
   space and A-Z into a-z; bytes from 0x80 are kept as they are. A token (a
   run between spaces) that is all ASCII is then exactly one word; the
   distinct tokens with a byte from 0x80 are decoded, lowered and split by
   the regex. Decoding token by token replaces exactly what decoding the
   whole text does, because an ASCII byte always ends an invalid UTF-8
   sequence; lowering token by token is exact because str.lower looks at
   context for one character only, the capital sigma (final sigma).
2. So, before that, each stretch of bytes around a capital sigma, out to the
   nearest ASCII byte that is neither a word byte nor case-ignorable (the
   final-sigma rule looks past "." ":" "'" "^" "`"), is cut out and counted
   the reference way.
3. Tokens are counted with numpy, never one Python object per token: a token
   of up to 8 bytes is its own little-endian uint64 key, of up to 16 bytes a
   pair of them (tokens hold no NUL byte, so a zero-padded key is exact);
   keys are sorted and counted by runs. Longer tokens, rare, go through a
   Counter. Keys are kept byte-swapped (big-endian), so that their numeric
   order is the words' own: the counts come out nearly in key order, and
   the map output's sort is a merge of a few sorted runs.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from worker.jobs.base import Job, Params, sorted_partitions
from worker.jobs.registry import register
from worker.reading import PieceData
from worker.records import MERGE_FAN_IN, Record, Source, merge

WORD = re.compile(r"\w+")

_WORD_ASCII = frozenset(b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_")
# ASCII characters that str.lower's final-sigma rule looks past.
_CASE_IGNORABLE_ASCII = frozenset(b"'.:^`")
_SPACE = 0x20
_FOLD = bytes(
    b + 0x20 if 0x41 <= b <= 0x5A else b if b >= 0x80 or b in _WORD_ASCII else _SPACE
    for b in range(256)
)
_SIGMA = "\u03a3".encode()
_BOUNDARY = re.escape(
    bytes(b for b in range(0x80) if b not in _WORD_ASCII and b not in _CASE_IGNORABLE_ASCII)
)
_TO_BOUNDARY = re.compile(b"[^" + _BOUNDARY + b"]*")
_THROUGH_LAST_BOUNDARY = re.compile(b".*[" + _BOUNDARY + b"]", re.DOTALL)

# Folded text is counted in blocks of about this size, cut at a space, so
# that the arrays stay a small multiple of it whatever the chunk size.
BLOCK_BYTES = 4 << 20
_PAD = b"\0" * 16
_MASKS = np.array([(1 << (8 * n)) - 1 for n in range(8)] + [2**64 - 1], dtype=np.uint64)
_HIGH_BITS = np.uint64(0x8080808080808080)
_NEWLINE = 0x0A
_NOT_A_OR_NEWLINE = re.compile(r"[^a\n]+")
# An odd multiplier (Fibonacci hashing's), to hash a pair of keys into one.
_MIX = np.uint64(0x9E3779B97F4A7C15)


def _sigma_regions(data: bytes) -> list[tuple[int, int]]:
    """[lo, hi) around each capital sigma, bounded by boundary bytes or the ends."""
    regions: list[tuple[int, int]] = []
    at = data.find(_SIGMA)
    while at != -1:
        lo, window = 0, 64
        while window:
            m = _THROUGH_LAST_BOUNDARY.match(data, max(0, at - window), at)
            if m:
                lo = m.end()
                break
            window = 0 if at - window <= 0 else window * 4
        # The pattern matches the empty string, so it always matches.
        hi = _TO_BOUNDARY.match(data, at).end()  # type: ignore[union-attr]
        if regions and lo <= regions[-1][1]:
            regions[-1] = (regions[-1][0], hi)
        else:
            regions.append((lo, hi))
        at = data.find(_SIGMA, hi)
    return regions


def _blocks(folded: bytes) -> Iterator[bytes]:
    start, size = 0, len(folded)
    while start < size:
        end = start + BLOCK_BYTES
        if end < size:
            cut = folded.rfind(b" ", start, end)
            if cut <= start:
                cut = folded.find(b" ", end)
            end = size if cut == -1 else cut
        yield folded[start:end]
        start = end


def _lines(rows: np.ndarray) -> bytes:
    """Rows of NUL-padded bytes as lines: each row without its NULs, then
    a newline (a token holds no NUL byte)."""
    ended = np.empty((len(rows), rows.shape[1] + 1), dtype=np.uint8)
    ended[:, :-1] = rows
    ended[:, -1] = _NEWLINE
    flat = ended.ravel()
    return bytes(flat[flat != 0].tobytes())


def _runs(keys: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted (key, summed count) pairs of equal keys; `keys` must be sorted."""
    if len(keys) == 0:
        return keys, counts
    first = np.empty(len(keys), dtype=bool)
    first[0] = True
    np.not_equal(keys[1:], keys[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    return keys[starts], np.add.reduceat(counts, starts)


def _pair_groups(pairs: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like `_pair_runs`, in no particular order, twice as fast: rows are
    grouped by a 64-bit hash (one sort of one key), and every row is checked
    against its group's first; should two rows ever share a hash, the rows
    are sorted instead."""
    if len(pairs) == 0:
        return pairs, counts
    hashed = pairs[:, 0] * _MIX ^ pairs[:, 1]
    order = np.argsort(hashed)
    hashed, pairs, counts = hashed[order], pairs[order], counts[order]
    first = np.empty(len(pairs), dtype=bool)
    first[0] = True
    np.not_equal(hashed[1:], hashed[:-1], out=first[1:])
    starts = np.flatnonzero(first)
    leads = pairs[starts]
    if not np.array_equal(pairs, leads[np.cumsum(first) - 1]):
        return _pair_runs(pairs, counts)
    return leads, np.add.reduceat(counts, starts)


def _pair_runs(pairs: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Like `_runs` for rows of two uint64 keys, in any order."""
    if len(pairs) == 0:
        return pairs, counts
    order = np.lexsort((pairs[:, 1], pairs[:, 0]))
    pairs, counts = pairs[order], counts[order]
    first = np.empty(len(pairs), dtype=bool)
    first[0] = True
    np.logical_or(pairs[1:, 0] != pairs[:-1, 0], pairs[1:, 1] != pairs[:-1, 1], out=first[1:])
    starts = np.flatnonzero(first)
    return pairs[starts], np.add.reduceat(counts, starts)


class WordTally:
    """Word counts over any number of byte strings, each taken as a whole
    text: `add` them, then read `counts()` once."""

    def __init__(self) -> None:
        self._short: list[tuple[np.ndarray, np.ndarray]] = []
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []
        self._long: Counter[bytes] = Counter()
        self._words: Counter[str] = Counter()

    def add(self, data: bytes) -> None:
        if _SIGMA in data:
            kept, at = [], 0
            for lo, hi in _sigma_regions(data):
                self._words.update(WORD.findall(data[lo:hi].decode("utf-8", "replace").lower()))
                kept.append(data[at:lo])
                at = hi
            kept.append(data[at:])
            data = b" ".join(kept)
        for block in _blocks(data.translate(_FOLD)):
            self._add_block(block)

    def _add_block(self, folded: bytes) -> None:
        buf = b" " + folded + _PAD
        inside = np.frombuffer(buf, dtype=np.uint8) > _SPACE
        # The buffer starts and ends outside a token: edges alternate start, end.
        edges = np.flatnonzero(inside[1:] != inside[:-1]) + 1
        starts, ends = edges[0::2], edges[1::2]
        lengths = ends - starts
        # Every byte offset as the start of a little-endian uint64.
        words = np.ndarray(shape=(len(buf) - 7,), dtype="<u8", buffer=buf, strides=(1,))
        short = lengths <= 8
        keys = (words[starts[short]] & _MASKS[lengths[short]]).byteswap()
        keys.sort()
        self._short.append(_runs(keys, np.ones(len(keys), dtype=np.int64)))
        mid = (lengths > 8) & (lengths <= 16)
        if mid.any():
            pairs = np.empty((int(mid.sum()), 2), dtype=np.uint64)
            pairs[:, 0] = words[starts[mid]].byteswap()
            pairs[:, 1] = (words[starts[mid] + 8] & _MASKS[lengths[mid] - 8]).byteswap()
            self._pairs.append(_pair_groups(pairs, np.ones(len(pairs), dtype=np.int64)))
        for s, e in zip(starts[lengths > 16].tolist(), ends[lengths > 16].tolist(), strict=True):
            self._long[buf[s:e]] += 1

    def counts(self) -> dict[str, int]:
        """Each word's count; the dict's order is the words' sorted order
        but for two runs (up to 8 bytes, then up to 16) and the few words
        that are longer or not ASCII, at the end."""
        out: dict[str, int] = {}
        # Tokens with a byte from 0x80, as rows of bytes (NUL-padded), and
        # their counts.
        odd_rows: list[np.ndarray] = []
        odd_counts: list[np.ndarray] = []
        if self._short:
            keys = np.concatenate([k for k, _ in self._short])
            counts = np.concatenate([c for _, c in self._short])
            order = np.argsort(keys)
            keys, counts = _runs(keys[order], counts[order])
            keys = keys.byteswap()
            plain = (keys & _HIGH_BITS) == 0
            # An all-ASCII folded token is a word as it is.
            words = keys[plain].view("S8").astype("U8").tolist()
            out.update(zip(words, counts[plain].tolist(), strict=True))
            odd_rows.append(keys[~plain].view(np.uint8).reshape(-1, 8))
            odd_counts.append(counts[~plain])
        if self._pairs:
            pairs, counts = _pair_runs(
                *_pair_groups(
                    np.concatenate([p for p, _ in self._pairs]),
                    np.concatenate([c for _, c in self._pairs]),
                )
            )
            plain = ((pairs[:, 0] | pairs[:, 1]) & _HIGH_BITS) == 0
            as_bytes = np.ascontiguousarray(pairs.byteswap(), dtype="<u8").view("S16").ravel()
            out.update(
                zip(as_bytes[plain].astype("U16").tolist(), counts[plain].tolist(), strict=True)
            )
            odd_rows.append(as_bytes[~plain].view(np.uint8).reshape(-1, 16))
            odd_counts.append(counts[~plain])
        texts = b"".join(_lines(rows) for rows in odd_rows)
        if self._long:
            texts += b"\n".join(self._long) + b"\n"
            odd_counts.append(np.fromiter(self._long.values(), dtype=np.int64))
        if texts:
            self._add_odd(out, texts, np.concatenate(odd_counts))
        get = out.get
        for word, n in self._words.items():
            out[word] = get(word, 0) + n
        return out

    @staticmethod
    def _add_odd(out: dict[str, int], texts: bytes, counts: np.ndarray) -> None:
        """Add the words of `texts`, tokens each ended by a newline, each
        token's words `counts` times.

        All at once: with every capital sigma cut out, lowering is
        context-free, and the newline after each token, an ASCII byte, keeps
        each token decoded as it would be alone. The words of all tokens
        come from one search; how many each token holds, from the same
        text with every word made one "a" and all but the "a"s and the
        newlines removed: its tokens' lengths."""
        lowered = texts.decode("utf-8", "replace").lower()
        words = WORD.findall(lowered)
        marks = _NOT_A_OR_NEWLINE.sub("", WORD.sub("a", lowered)).encode("ascii")
        ends = np.flatnonzero(np.frombuffer(marks, dtype=np.uint8) == _NEWLINE)
        per_token = np.diff(ends, prepend=-1) - 1
        get = out.get
        for word, n in zip(words, np.repeat(counts, per_token).tolist(), strict=True):
            out[word] = get(word, 0) + n


def count_words_utf8(data: bytes) -> dict[str, int]:
    """Counter(re.findall(r"\\w+", data.decode("utf-8", "replace").lower())), faster."""
    tally = WordTally()
    tally.add(data)
    return tally.counts()


def count_words(text: str) -> Counter[str]:
    """Counter(re.findall(r"\\w+", text.lower())), computed faster."""
    # Lone surrogates come back as U+FFFD: neither is a word character.
    return Counter(count_words_utf8(text.encode("utf-8", "surrogatepass")))


@register
class WordCount(Job):
    name = "wordcount"
    description = "count each word (regex \\w+ over lower-cased text)"
    summary_names: ClassVar[tuple[str, str] | None] = ("words", "distinct words")

    def mapper(self, line: str, params: Params) -> Iterator[tuple[str, Any]]:
        for word in WORD.findall(line.lower()):
            yield word, 1

    def combiner(self, key: str, values: Iterable[Any]) -> Any:
        return sum(values)

    def reducer(self, key: str, values: Iterator[Any]) -> Any:
        return sum(values)

    def map_chunk(
        self, step: int, pieces: Iterable[PieceData], partitions: int
    ) -> list[list[Record]]:
        """The mapper and combiner's records, from the byte kernel above."""
        if step != 0:
            return super().map_chunk(step, pieces, partitions)
        tally = WordTally()
        # Small files are counted many at a time, joined by a newline: the
        # counting costs a few numpy calls per text, whatever its size. The
        # join is exact: a newline is an ASCII byte that is neither a word
        # byte nor case-ignorable, so it ends a word, an invalid UTF-8
        # sequence and a sigma's region as the end of a file does.
        batch: list[bytes] = []
        size = 0
        for piece in pieces:
            batch.append(piece.data)
            size += len(piece.data)
            if size >= BLOCK_BYTES:
                tally.add(b"\n".join(batch))
                batch, size = [], 0
        if batch:
            tally.add(b"\n".join(batch))
        return sorted_partitions(tally.counts().items(), partitions)

    def reduce_runs(
        self, step: int, runs: Sequence[Source], *, fan_in: int = MERGE_FAN_IN
    ) -> Iterator[Record]:
        """The reducer's sums, merged block by block (worker.records): the
        reducer only adds numbers, so the merge can add them as it goes."""
        if step != 0:
            return super().reduce_runs(step, runs, fan_in=fan_in)
        return merge(runs, fan_in=fan_in, sums=True)

    def reduce_partition(self, step: int, records: Iterable[Record]) -> Iterator[Record]:
        """The reducer's sums, added up in one loop: a reducer call per word
        cost more than the merge."""
        if step != 0:
            yield from super().reduce_partition(step, records)
            return
        word, total = None, 0
        for key, n in records:
            if key == word:
                total += n
            else:
                if word is not None:
                    yield word, total
                word, total = key, n
        if word is not None:
            yield word, total
