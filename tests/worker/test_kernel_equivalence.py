"""The fast wordcount kernel against the reference of DESIGN.md on adversarial
text: every path of the kernel (short, paired and long tokens, blocks, the
regions around a capital sigma) and every trap of the reference (str.lower's
final sigma and multi-character lowerings, combining marks, Unicode white
space that bytes.split does not know, invalid UTF-8)."""

from __future__ import annotations

import random
import re
from collections import Counter

import pytest

from worker.jobs import wordcount
from worker.jobs.wordcount import WordTally, count_words, count_words_utf8

PIECES = [
    # ASCII words, cases, digits, underscores, and every ASCII separator.
    "a",
    "Z",
    "word",
    "Word",
    "WORD",
    "x86_64",
    "_",
    "__init__",
    "2026",
    "snake_case",
    "abcdefgh",
    "abcdefghi",
    "ABCDEFGHIJKLMNOP",
    "abcdefghijklmnopq",
    "a" * 40,
    *list("!\"#$%&'()*+,-./:;<=>?@[\\]^`{|}~"),
    # White space: ASCII, and what only str.split or \w knows about.
    " ",
    "  ",
    "\t",
    "\n",
    "\r\n",
    "\x0b",
    "\x0c",
    "\x1c",
    "\x1d",
    "\x1e",
    "\x1f",
    "\x85",
    "\xa0",
    "\u2028",
    "\u2029",
    "\u3000",
    "\u180e",
    "\u200b",
    "\ufeff",
    # Greek: capital sigma beside cased letters, case-ignorables and boundaries.
    "\u03a3",
    "\u03c3",
    "\u03c2",
    "\u039f\u0394\u039f\u03a3",
    "\u0391",
    "\u03b1",
    "\u03a3\u039f\u03a3",
    "\u03a3\u03af\u03c3\u03c5\u03c6\u03bf\u03c2",
    "\u0386",
    # Lowerings that change length or need care; combining marks, which \w lacks.
    "\u0130",
    "\u0130stanbul",
    "\u1e9e",
    "\u00df",
    "\ufb01ne",
    "\u212a",
    "\u2126",
    "e\u0301",
    "\u00e9",
    "\u0301",
    "\u0307",
    "\u0928\u092e\u0938\u094d\u0924\u0947",
    # Other scripts and symbols.
    "\u65e5\u672c\u8a9e",
    "\u0416\u0436",
    "\u00c6\u00d8\u00c5",
    "\U0001f600",
    "\ufffd",
    "\u00bd",
    "\u0661\u0662",
    "\u2160",
    "\u00aa",
    "\u02b0",
]
INVALID = [
    b"\xff",
    b"\xfe",
    b"\xc3",
    b"\xe2\x82",
    b"\xed\xa0\x80",
    b"\xc0\xaf",
    b"\xf4\x90\x80\x80",
]


def reference(data: bytes) -> dict[str, int]:
    return dict(Counter(re.findall(r"\w+", data.decode("utf-8", "replace").lower())))


def adversarial(rng: random.Random, length: int) -> bytes:
    parts: list[bytes] = []
    for _ in range(length):
        if rng.random() < 0.05:
            parts.append(rng.choice(INVALID))
        else:
            parts.append(rng.choice(PIECES).encode("utf-8"))
    return b"".join(parts)


@pytest.mark.parametrize("seed", range(8))
def test_kernel_equals_the_reference_on_adversarial_bytes(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small blocks, so that cutting text into blocks is exercised too.
    monkeypatch.setattr(wordcount, "BLOCK_BYTES", 97)
    rng = random.Random(seed)
    for _ in range(60):
        data = adversarial(rng, rng.randint(0, 400))
        assert count_words_utf8(data) == reference(data), data


def test_final_sigma_sees_past_case_ignorable_ascii() -> None:
    # Lowered alone, each capital sigma here would become a final sigma.
    for text in (
        "\u039f\u0394\u039f\u03a3.\u0391",
        "\u0391:\u03a3",
        "\u0391'\u03a3'\u0391",
        "\u0391^\u03a3",
        "\u0391`\u03a3 \u03a3",
        "\u0391\u03a3,\u0391",
    ):
        data = text.encode()
        assert count_words_utf8(data) == reference(data), text


def test_a_long_stretch_before_a_capital_sigma() -> None:
    data = ("x" * 300 + "\u0391." * 50 + "\u03a3" + "y" * 300 + " \u03a3").encode()
    assert count_words_utf8(data) == reference(data)


def test_str_input_with_lone_surrogates() -> None:
    text = "ab\udc80cd \ud800\u03a3\u0391 \udfff"
    assert dict(count_words(text)) == dict(Counter(re.findall(r"\w+", text.lower())))


def test_a_tally_over_pieces_sums_each_piece_as_a_whole_text() -> None:
    rng = random.Random(99)
    pieces = [adversarial(rng, 200) + b"\n" for _ in range(5)]
    tally = WordTally()
    for piece in pieces:
        tally.add(piece)
    expected: Counter[str] = Counter()
    for piece in pieces:
        expected.update(reference(piece))
    assert tally.counts() == dict(expected)


def test_empty_and_separator_only_input() -> None:
    assert count_words_utf8(b"") == {}
    assert count_words_utf8(b" \n\t,.;\xa0") == {}
    assert WordTally().counts() == {}


def test_tokens_of_9_to_16_bytes_whose_hashes_collide_are_still_counted_apart() -> None:
    import numpy as np

    mix = int(wordcount._MIX)
    a = (1, 5)
    # The same 64-bit hash as `a`, another row: (2 * mix) ^ b == (1 * mix) ^ 5.
    b = (2, 5 ^ mix ^ (2 * mix % 2**64))
    rows = np.array([a, b, a, (3, 3), b, a], dtype=np.uint64)
    hashed = rows[:, 0] * wordcount._MIX ^ rows[:, 1]
    assert hashed[0] == hashed[1]
    keys, counts = wordcount._pair_groups(rows, np.ones(len(rows), dtype=np.int64))
    got = {tuple(map(int, k)): int(c) for k, c in zip(keys, counts, strict=True)}
    assert got == {a: 3, b: 2, (3, 3): 1}
