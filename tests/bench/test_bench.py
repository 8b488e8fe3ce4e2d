"""The benchmark's machinery on a tiny corpus: the corpus is the same for the
same seed, and a whole run (without mrjob and the plot, which need the
benchmark's own environment from PyPI) measures every system and checks each
result. Speed itself is measured by `make bench`, not here."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from bench import pricing
from bench.__main__ import main
from bench.corpus import CorpusSpec, ascii_copy, generate

TINY = CorpusSpec(seed=7, size_bytes=300_000, files=3)
# Changing the generator changes every benchmark's input: do it on purpose.
TINY_SHA256 = "b868552b77ff7c9a313f02d46cf9ede2abe8c2049a4a2bcce00fdcdf8ba0fbc1"


def test_the_same_seed_gives_the_same_corpus(tmp_path: Path) -> None:
    a = generate(TINY, tmp_path / "a")
    b = generate(TINY, tmp_path / "b")
    assert a.sha256 == b.sha256
    assert [p.read_bytes() for p in a.files] == [p.read_bytes() for p in b.files]
    assert abs(a.size_bytes - TINY.size_bytes) < 1000
    other = generate(CorpusSpec(seed=8, size_bytes=300_000, files=3), tmp_path / "c")
    assert other.sha256 != a.sha256


def test_the_generator_is_pinned(tmp_path: Path) -> None:
    assert generate(TINY, tmp_path).sha256 == TINY_SHA256


def test_the_corpus_holds_the_traps_of_the_word_semantics(tmp_path: Path) -> None:
    data = b"".join(p.read_bytes() for p in generate(TINY, tmp_path).files)
    assert "\u03a3".encode() in data  # capital sigma: final-sigma lowering
    for separator in ("\r\n", "\t", "\xa0", "\u2028", "\x1c"):
        assert separator.encode() in data, repr(separator)
    with pytest.raises(UnicodeDecodeError):
        data.decode("utf-8")
    text = data.decode("utf-8", "replace")
    assert any(ord(c) > 0x3000 for c in text)  # CJK
    assert "_" in text and any(c.isdigit() for c in text)


def test_the_ascii_copy_keeps_size_and_lines(tmp_path: Path) -> None:
    corpus = generate(TINY, tmp_path)
    for src, dst in zip(corpus.files, ascii_copy(corpus), strict=True):
        original, copy = src.read_bytes(), dst.read_bytes()
        assert len(copy) == len(original)
        assert copy.count(b"\n") == original.count(b"\n")
        assert max(copy) < 0x80


def test_cost_of_an_hour_of_one_busy_task() -> None:
    cost = pricing.estimate(cpu_s=3600, vcpu=1, memory_gb=2, requests={"sqs.X": 10**6}, items=0)
    assert cost.compute_usd == pytest.approx(0.04048 + 2 * 0.004445)
    assert cost.spot_compute_usd == pytest.approx(cost.compute_usd * 0.3)
    assert cost.requests_usd == pytest.approx(0.40)


def test_a_quick_run_measures_and_checks_every_system(tmp_path: Path) -> None:
    code = main(
        [
            "--size-mb",
            "1",
            "--no-mrjob",
            "--no-plot",
            "--scale-chunks",
            "200",
            "--out",
            str(tmp_path),
        ]
    )
    assert code == 0
    results = json.loads((tmp_path / "results.json").read_text())
    rows = results["wordcount"] + results["grep"]
    assert {r["key"] for r in rows} == {
        "reference", "kernel", "drover1", "drover2", "gnu",
        "grep_reference", "gnu_grep", "drover_grep",
    }  # fmt: skip
    assert all(r["same"] and r["seconds"] > 0 for r in rows), rows
    for run in results["drover"].values():
        assert run["requests_by_role"]["map"] > 0 and run["requests_by_role"]["reduce"] > 0
        assert run["map_peak_rss_mib"] > 0 and run["reduce_peak_rss_mib"] > 0
        assert run["usd_per_gb_fargate"] > run["usd_per_gb_spot"] > 0
    assert [m["label"] for m in results["memory"]] == [
        "a tenth-size corpus", "the same, 10 times over", "a tenth-size corpus, 4x the vocabulary",
    ]  # fmt: skip
    tenth, tenfold, _ = results["memory"]
    assert tenfold["chunks"] == 10 * tenth["chunks"]
    assert tenfold["distinct_keys"] == tenth["distinct_keys"]
    # The scale row: a job of as many chunks as asked, queued and run.
    (scale,) = results["scale"]
    assert abs(scale["chunks"] - 200) <= 1 and scale["same"]
    assert scale["enqueue_msgs_s"] > 0 and scale["seconds"] > scale["job_s"] > 0
    text = (tmp_path / "results.md").read_text()
    assert "## Scale" in text
    assert "## Targets" in text and "| (b) Drover map kernel, 1 process |" in text


def test_only_the_local_fleets_polling_and_provisioning_are_left_out_of_the_requests() -> None:
    import threading

    from bench import drover, usage
    from worker.names import LOCAL_FLEET_THREAD

    keys: dict[str, str] = {}

    def polled() -> None:
        keys["fleet"] = usage._key("before-send.sqs.GetQueueAttributes")

    fleet = threading.Thread(target=polled, name=LOCAL_FLEET_THREAD)
    fleet.start()
    fleet.join()
    # The CLI reads its dead-letter queues' depth itself, as a deployed one does.
    own = usage._key("before-send.sqs.GetQueueAttributes")
    run = drover.DroverRun(
        job="wordcount", workers=2, chunk_size_bytes=1, input_bytes=1, chunks=1,
        seconds=1.0, command_s=1.0, job_s=1.0, created_s=0.0, finished_s=1.0, result={},
        processes=[
            drover.ProcessUsage(
                "submit", Counter({keys["fleet"]: 90, own: 2, "sqs.CreateQueue": 4}), 0, 1.0, 1
            )
        ],
    )  # fmt: skip
    assert run.requests == {"sqs.GetQueueAttributes": 2}
    assert run.local_only_requests == 94
