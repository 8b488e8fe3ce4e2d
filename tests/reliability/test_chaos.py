"""Chaos at the settings a user gets: a map worker SIGKILLed about every
second for a minute while a job of hundreds of chunks runs. Whatever the
kills interrupt, SQS redelivers after the local visibility timeout; the job
ends within two minutes of the last kill, the result is the reference, every
chunk is counted once, and nothing is left behind, in a DLQ least of all."""

from __future__ import annotations

import random
import re
import signal
import threading
import time
from pathlib import Path

from submit.local import LocalDrover, LocalOptions
from submit.submission import submit_job
from submit.tracking import fetch_result, job_status, wait_for
from tests.conftest import reference_wordcount
from tests.reliability.conftest import log_lines, until, write_corpus
from worker.ledger import ItemState, Phase

CHAOS_S = 60.0
AFTER_CHAOS_S = 120.0
# Enough chunks of 512 bytes (about 2,000) to keep two workers busy for the
# whole minute, with some to spare.
CORPUS_FILES = 72


class Killer:
    """Kills a random live map worker every 0.7 to 1.3 s, for `for_s`
    seconds or until stopped."""

    def __init__(self, drover: LocalDrover, seed: int, *, for_s: float) -> None:
        self.drover = drover
        self.rng = random.Random(seed)
        self.for_s = for_s
        self.kills = 0
        self.stopped_at = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="killer", daemon=True)

    def run(self) -> None:
        assert self.drover.fleet is not None
        end = time.monotonic() + self.for_s
        while time.monotonic() < end and not self.stop.wait(self.rng.uniform(0.7, 1.3)):
            alive = [p for p in self.drover.fleet.workers(Phase.MAP) if p.poll() is None]
            if alive:
                self.rng.choice(alive).send_signal(signal.SIGKILL)
                self.kills += 1
        self.stopped_at = time.monotonic()

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_job_survives_a_worker_killed_every_second_at_the_defaults(tmp_path: Path) -> None:
    # The settings `run --local` uses: cdk.json's, with the local visibility
    # timeout, and the default fleet.
    options = LocalOptions(log_dir=tmp_path / "logs")
    files = write_corpus(tmp_path / "in", files=CORPUS_FILES, lines=520, seed=42)
    with LocalDrover(options) as drover:
        assert drover.resources is not None
        assert drover.settings.max_receive_count == 5
        clients, resources = drover.clients(), drover.resources
        with Killer(drover, seed=4, for_s=CHAOS_S) as killer:
            submitted = submit_job(
                clients,
                resources,
                inputs=sorted(files),
                job="wordcount",
                params={},
                chunk_size_bytes=512,
                partitions=3,
            )
            # The job must outlast the chaos, or the test proves little.
            until(lambda: killer.stopped_at, timeout_s=CHAOS_S + 30, what="the minute of kills")
            running_after_chaos = not job_status(
                clients, resources, submitted.job_id, details=False
            ).terminal
        status = wait_for(
            clients, resources, submitted.job_id, timeout_s=AFTER_CHAOS_S, max_poll_s=0.5
        )
        after_chaos_s = time.monotonic() - killer.stopped_at
        result = fetch_result(clients, resources, submitted.job_id)
        # Copies redelivered after the job finished are dropped as duplicates;
        # wait for them, then nothing may be left anywhere.
        queues = (
            resources.map_queue_url,
            resources.reduce_queue_url,
            resources.map_dlq_url,
            resources.reduce_dlq_url,
        )

        def empty() -> bool:
            for url in queues:
                attrs = clients.sqs.get_queue_attributes(
                    QueueUrl=url,
                    AttributeNames=[
                        "ApproximateNumberOfMessages",
                        "ApproximateNumberOfMessagesNotVisible",
                    ],
                )["Attributes"]
                if any(int(v) for v in attrs.values()):
                    return False
            return True

        until(empty, timeout_s=60, what="every queue and DLQ empty")
        items = clients.ledger(resources).items(submitted.job_id, Phase.MAP)

    chunks = submitted.chunks
    # Every receive of a map message that was not its first, from the
    # workers' logs (the killed ones' included).
    receives = [
        int(m.group(1))
        for line in log_lines(*sorted((tmp_path / "logs").glob("local-map-*.log")))
        if (m := re.search(r" chunk \d+ receive=(\d+): start", line))
    ]
    redeliveries = sum(1 for r in receives if r > 1)
    counted_late = sum(1 for i in items if i.attempts > 1)
    same = result == reference_wordcount(files)
    print(
        f"\nchaos: {chunks} chunks, {killer.kills} kills in {CHAOS_S:.0f} s, job "
        f"{'still running' if running_after_chaos else 'already done'} when they stopped, "
        f"done {after_chaos_s:.1f} s after the last kill; {redeliveries} redeliveries "
        f"({counted_late} chunks counted on a redelivery, most receives of one chunk "
        f"{max(receives, default=0)}), {status.done} chunks counted of {status.expected}, "
        f"state {status.state}, result {'equals' if same else 'DIFFERS FROM'} the reference"
    )
    assert chunks >= 200
    assert killer.kills >= 40, "the kills stopped early"
    assert running_after_chaos, "the job ended before the minute of kills did"
    assert status.state == "SUCCEEDED", status
    assert after_chaos_s <= AFTER_CHAOS_S
    assert same
    assert (status.done, status.expected) == (chunks, chunks)
    assert [i.key.number for i in items] == list(range(chunks))
    assert all(i.state is ItemState.DONE for i in items)
