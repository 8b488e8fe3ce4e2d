"""The reference one-liners of DESIGN.md, for `run --local --compare`: the
plain single-process computation a user would otherwise write, timed on the
same input, to check Drover's result against and to put its time beside."""

from __future__ import annotations

import collections
import re
import time
from collections.abc import Sequence
from typing import Any

from submit.splitting import InputFile


def _text(f: InputFile) -> str:
    assert f.path is not None
    data = f.path.read_bytes()
    if f.gzip:
        import gzip

        data = gzip.decompress(data)
    return data.decode("utf-8", errors="replace")


# The jobs `run --compare` has a one-liner for.
COMPARABLE = ("wordcount", "grep")


def reference(job: str, params: dict[str, Any], files: Sequence[InputFile]) -> Any:
    if job == "wordcount":
        total: collections.Counter[str] = collections.Counter()
        for f in files:
            total.update(re.findall(r"\w+", _text(f).lower()))
        return dict(total)
    if job == "grep":
        pattern = re.compile(params["pattern"])
        out = []
        for f in files:
            text = _text(f)
            lines = text.split("\n")
            if lines[-1] == "":
                lines.pop()
            for number, line in enumerate(lines, start=1):
                if line.endswith("\r") and (number < len(lines) or text.endswith("\n")):
                    line = line[:-1]
                if pattern.search(line):
                    out.append({"input": f.name, "line": number, "text": line})
        return out
    raise ValueError(f"no reference for job {job!r}")


def timed_reference(
    job: str, params: dict[str, Any], files: Sequence[InputFile]
) -> tuple[Any, float]:
    started = time.perf_counter()
    result = reference(job, params, files)
    return result, time.perf_counter() - started
