"""A deterministic text corpus for the benchmark: no network, the same bytes
for the same seed and size on every machine.

Words follow a Zipf law over a generated vocabulary. Most words are ASCII;
some are accented Latin, Greek (the upper-case forms of words ending in a
final sigma exercise str.lower's context rule), Cyrillic, CJK, Devanagari
with combining marks (which `\\w` does not match), or carry digits,
underscores, apostrophes or hyphens. Words come capitalized or upper-case now
and then, and wrapped in punctuation. Lines end in "\\n" (now and then
"\\r\\n"); words are separated by spaces with the odd tab, no-break space,
U+2028 or \\x1c; and a few invalid UTF-8 sequences are sprinkled in. That is
what the word count and grep semantics of DESIGN.md must survive.
"""

from __future__ import annotations

import hashlib
import json
import operator
import random
import shutil
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from itertools import accumulate
from pathlib import Path

# Bump when the output changes, so that no cached corpus of the old kind is reused.
GENERATOR_VERSION = 2
# Distinct lower-case words, and the Zipf exponent over their ranks.
VOCABULARY_WORDS = 200_000
ZIPF_EXPONENT = 1.0
# Words drawn per block; a block is encoded and written at once.
BLOCK_WORDS = 100_000
# On average one invalid UTF-8 sequence per this many bytes.
INVALID_EVERY_BYTES = 64 << 10
INVALID_SEQUENCES = (b"\xff", b"\xc3", b"\xe2\x82", b"\xed\xa0\x80")

# Two letters each.
_SYLLABLE_PAIRS = (
    "karitonamesulodevepainenanorarerthstchquexalolunrecomibagofulytyzewohanisetakiromudapelinobisa"
)
_SYLLABLES = tuple(_SYLLABLE_PAIRS[i : i + 2] for i in range(0, len(_SYLLABLE_PAIRS), 2))
_LATIN = "aeiounrstlcmdpbgvfhéèêàâçîïôûüöäßñøåæœ"
_GREEK = "αβγδεζηθικλμνξοπρτυφχψω"
_CYRILLIC = "абвгдежзийклмнопрстуфхцчшщыэюя"
_CJK_FIRST, _CJK_SPAN = 0x4E00, 2000
_DEVANAGARI = "नमसकरतपलहद"
_MARKS = "्िाें"

# How a drawn word is written: its case, weighted.
_CASES: tuple[tuple[int, Callable[[str], str]], ...] = (
    (920, str),
    (70, str.capitalize),
    (10, str.upper),
)
# What wraps a word and what follows it, weighted; "\n" ends a line.
_WRAPS = (
    (850, "%s"),
    (60, "%s,"),
    (45, "%s."),
    (10, "%s:"),
    (10, "(%s)"),
    (10, '"%s"'),
    (5, "«%s»"),
    (5, "%s!"),
    (5, "%s;"),
)
_AFTER = (
    (9_000, " "),
    (800, "\n"),
    (60, "\n\n"),
    (40, "\r\n"),
    (40, "\t"),
    (20, "\xa0"),
    (10, " — "),
    (5, "\u2028"),
    (5, "\x1c"),
)


@dataclass(frozen=True)
class CorpusSpec:
    seed: int
    size_bytes: int
    files: int = 8
    vocabulary_words: int = VOCABULARY_WORDS

    @property
    def name(self) -> str:
        return f"corpus-seed{self.seed}-{self.size_bytes}-v{self.vocabulary_words}"


@dataclass(frozen=True)
class Corpus:
    spec: CorpusSpec
    directory: Path
    files: tuple[Path, ...]
    sha256: str

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def _letters(rng: random.Random, alphabet: Sequence[str], low: int, high: int) -> str:
    return "".join(rng.choice(alphabet) for _ in range(rng.randint(low, high)))


def _word(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.80:
        return _letters(rng, _SYLLABLES, 1, 4)
    if kind < 0.85:
        return _letters(rng, _LATIN, 3, 9)
    if kind < 0.89:
        word = _letters(rng, _GREEK, 3, 8)
        return word + "ς" if rng.random() < 0.5 else word
    if kind < 0.92:
        return _letters(rng, _CYRILLIC, 3, 9)
    if kind < 0.94:
        return "".join(chr(_CJK_FIRST + rng.randrange(_CJK_SPAN)) for _ in range(rng.randint(2, 4)))
    if kind < 0.95:
        return "".join(rng.choice(_DEVANAGARI) + rng.choice(_MARKS) for _ in range(2))
    if kind < 0.97:
        stem = _letters(rng, _SYLLABLES, 1, 2)
        return f"{stem}_{rng.randrange(100)}" if rng.random() < 0.5 else str(rng.randrange(3000))
    joiner = "'" if rng.random() < 0.5 else "-"
    return _letters(rng, _SYLLABLES, 1, 2) + joiner + _letters(rng, _SYLLABLES, 1, 2)


def vocabulary(seed: int, words: int = VOCABULARY_WORDS) -> list[str]:
    """`words` distinct words, most frequent first."""
    rng = random.Random(f"drover-vocabulary-{seed}")
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < words:
        w = _word(rng)
        if w not in seen:
            seen.add(w)
            out.append(w)
    return out


class _Sampler:
    """Draws text from the vocabulary: Zipf-ranked words, cased, wrapped and
    separated, in blocks of BLOCK_WORDS words."""

    def __init__(self, seed: int, vocabulary_words: int) -> None:
        words = vocabulary(seed, vocabulary_words)
        self.forms = [case(w) for _, case in _CASES for w in words]
        self.form_weights = list(
            accumulate(
                weight / (rank**ZIPF_EXPONENT)
                for weight, _ in _CASES
                for rank in range(1, len(words) + 1)
            )
        )
        self.glue = [wrap + after for _, wrap in _WRAPS for _, after in _AFTER]
        self.glue_weights = list(accumulate(w1 * w2 for w1, _ in _WRAPS for w2, _ in _AFTER))

    def block(self, rng: random.Random) -> bytes:
        forms = rng.choices(self.forms, cum_weights=self.form_weights, k=BLOCK_WORDS)
        glue = rng.choices(self.glue, cum_weights=self.glue_weights, k=BLOCK_WORDS)
        data = bytearray("".join(map(operator.mod, glue, forms)).encode())
        # From the end, so that earlier positions stay valid.
        spots = sorted(
            (rng.randrange(len(data)) for _ in range(max(1, len(data) // INVALID_EVERY_BYTES))),
            reverse=True,
        )
        for spot in spots:
            space = data.find(b" ", spot)
            if space != -1:
                data[space : space + 1] = rng.choice(INVALID_SEQUENCES)
        return bytes(data)


def _write_file(path: Path, size_bytes: int, sampler: _Sampler, rng: random.Random) -> None:
    written = 0
    with path.open("wb") as f:
        while written < size_bytes:
            data = sampler.block(rng)
            left = size_bytes - written
            if len(data) >= left:
                # End on a whole line where one fits.
                cut = data.rfind(b"\n", 0, left)
                f.write(data[: cut + 1] if cut != -1 else data[:left])
                return
            f.write(data)
            written += len(data)


def _digest(files: Sequence[Path]) -> str:
    h = hashlib.sha256()
    for p in files:
        h.update(p.name.encode() + b"\0")
        with p.open("rb") as f:
            while block := f.read(8 << 20):
                h.update(block)
    return h.hexdigest()


def generate(spec: CorpusSpec, root: Path) -> Corpus:
    """The corpus for `spec` under `root`, generated unless an identical one
    (same spec, same digest) is already there."""
    directory = root / spec.name
    # Beside the corpus, not in it: the directory is the jobs' input.
    manifest = root / f"{spec.name}.json"
    files = tuple(directory / f"part-{i:02d}.txt" for i in range(spec.files))
    if manifest.exists():
        recorded = json.loads(manifest.read_text())
        if (
            recorded.get("generator") == GENERATOR_VERSION
            and recorded.get("spec") == asdict(spec)
            and all(p.exists() for p in files)
        ):
            digest = _digest(files)
            if digest == recorded.get("sha256"):
                return Corpus(spec, directory, files, digest)
    directory.mkdir(parents=True, exist_ok=True)
    sampler = _Sampler(spec.seed, spec.vocabulary_words)
    base, extra = divmod(spec.size_bytes, spec.files)
    for i, path in enumerate(files):
        rng = random.Random(f"drover-corpus-{spec.seed}-{i}")
        _write_file(path, base + (1 if i < extra else 0), sampler, rng)
    digest = _digest(files)
    manifest.write_text(
        json.dumps(
            {"generator": GENERATOR_VERSION, "spec": asdict(spec), "sha256": digest}, indent=2
        )
        + "\n"
    )
    return Corpus(spec, directory, files, digest)


# Every byte outside ASCII becomes a space: same size, same lines, and the
# non-ASCII words turn into separators.
_TO_ASCII = bytes(b if b < 0x80 else 0x20 for b in range(256))


def ascii_copy(corpus: Corpus) -> tuple[Path, ...]:
    """The corpus with every byte >= 0x80 replaced by a space, beside it."""
    directory = corpus.directory.with_name(corpus.directory.name + "-ascii")
    directory.mkdir(exist_ok=True)
    stamp = directory.with_name(directory.name + ".sha256")
    out = tuple(directory / p.name for p in corpus.files)
    if stamp.exists() and stamp.read_text() == corpus.sha256 and all(p.exists() for p in out):
        return out
    for src, dst in zip(corpus.files, out, strict=True):
        dst.write_bytes(src.read_bytes().translate(_TO_ASCII))
    stamp.write_text(corpus.sha256)
    return out


# The many-small-files corpus: the installed standard library's text files,
# copied side by side until there are at least this many bytes and files.
STDLIB_MIN_BYTES = 150_000_000
STDLIB_MIN_FILES = 5_001


def _stdlib_text_files() -> list[Path]:
    """The standard library's files that are text: valid UTF-8 without NUL
    bytes, outside site-packages and compiled caches, in a fixed order."""
    import sysconfig

    root = Path(sysconfig.get_paths()["stdlib"])
    out = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).parts
        if "site-packages" in rel or "__pycache__" in rel or not path.is_file():
            continue
        if path.is_symlink():
            continue
        data = path.read_bytes()
        if not data or b"\0" in data:
            continue
        try:
            data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(path)
    return out


@dataclass(frozen=True)
class FilesCorpus:
    directory: Path
    files: tuple[Path, ...]
    copies: int
    sha256: str

    @property
    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.files)


def stdlib_corpus(root: Path) -> FilesCorpus:
    """The standard library's text files copied `copies` times under
    root/stdlib-xN/copy-K/, enough copies for STDLIB_MIN_BYTES in
    STDLIB_MIN_FILES files; reused when already there and unchanged."""
    import sysconfig

    sources = _stdlib_text_files()
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    one_bytes = sum(p.stat().st_size for p in sources)
    copies = max(-(-STDLIB_MIN_BYTES // one_bytes), -(-STDLIB_MIN_FILES // len(sources)))
    directory = root / f"stdlib-x{copies}"
    files = tuple(
        directory / f"copy-{k:02d}" / p.relative_to(stdlib) for k in range(copies) for p in sources
    )
    digest = hashlib.sha256(
        "\n".join(f"{p.relative_to(stdlib)}:{p.stat().st_size}" for p in sources).encode()
    ).hexdigest()
    stamp = directory.with_name(directory.name + ".sha256")
    # Drover reads the whole directory: anything else in it (a compiled
    # cache, say) would change the input.
    if not (
        stamp.exists()
        and stamp.read_text() == digest
        and all(p.exists() for p in files)
        and sum(1 for p in directory.rglob("*") if not p.is_dir()) == len(files)
    ):
        shutil.rmtree(directory, ignore_errors=True)
        for k in range(copies):
            for p in sources:
                target = directory / f"copy-{k:02d}" / p.relative_to(stdlib)
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(p.read_bytes())
        stamp.write_text(digest)
    return FilesCorpus(directory, files, copies, digest)
