"""Chaos: a map worker SIGKILLed about every second while a job of hundreds
of chunks runs. Whatever the kills interrupt, SQS redelivers; the result is
the reference, every chunk is counted once, and nothing is left behind."""

from __future__ import annotations

import random
import re
import signal
import threading
from pathlib import Path

from submit.local import LocalDrover, LocalOptions
from submit.submission import submit_job
from submit.tracking import fetch_result, wait_for
from tests.conftest import reference_wordcount
from tests.reliability.conftest import log_lines, until, write_corpus
from worker.ledger import ItemState, Phase
from worker.settings import Settings


class Killer:
    """Kills a random live map worker every 0.7 to 1.3 s until stopped."""

    def __init__(self, drover: LocalDrover, seed: int) -> None:
        self.drover = drover
        self.rng = random.Random(seed)
        self.kills = 0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self.run, name="killer", daemon=True)

    def run(self) -> None:
        assert self.drover.fleet is not None
        while not self.stop.wait(self.rng.uniform(0.7, 1.3)):
            alive = [p for p in self.drover.fleet.workers(Phase.MAP) if p.poll() is None]
            if alive:
                self.rng.choice(alive).send_signal(signal.SIGKILL)
                self.kills += 1

    def __enter__(self) -> Killer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join()


def test_a_job_survives_a_worker_killed_every_second(tmp_path: Path) -> None:
    options = LocalOptions(
        max_workers=3,
        max_reducers=1,
        # Ten receives: under a kill a second, a healthy chunk must not reach
        # the DLQ by bad luck (see FIELD-NOTES on maxReceiveCount).
        settings=Settings(visibility_timeout_s=5, max_receive_count=10),
        idle_s=3,
        poll_s=0.25,
        log_dir=tmp_path / "logs",
        extra_env={"DROVER_RECEIVE_WAIT_S": "1"},
    )
    files = write_corpus(tmp_path / "in", files=8, lines=520, seed=42)
    with LocalDrover(options) as drover:
        assert drover.resources is not None
        clients, resources = drover.clients(), drover.resources
        with Killer(drover, seed=4) as killer:
            submitted = submit_job(
                clients,
                resources,
                inputs=sorted(files),
                job="wordcount",
                params={},
                chunk_size_bytes=512,
                partitions=3,
            )
            status = wait_for(clients, resources, submitted.job_id, timeout_s=600, max_poll_s=0.5)
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

        until(empty, timeout_s=120, what="every queue and DLQ empty")
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
        f"\nchaos: {chunks} chunks, {killer.kills} kills, {redeliveries} redeliveries "
        f"({counted_late} chunks counted on a redelivery), {status.done} chunks counted "
        f"of {status.expected}, {len(items)} chunk records, state {status.state}, "
        f"result {'equals' if same else 'DIFFERS FROM'} the reference"
    )
    assert chunks >= 200
    assert status.state == "SUCCEEDED", status
    assert same
    assert (status.done, status.expected) == (chunks, chunks)
    assert [i.key.number for i in items] == list(range(chunks))
    assert all(i.state is ItemState.DONE for i in items)
    assert killer.kills >= 10, "the job ended before the chaos began"
