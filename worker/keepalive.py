"""The message in hand, kept alive: its visibility extended while the work
runs, and given back in time when the worker must stop.

A thread wakes a few times a second. While a message is held, it extends
the message's visibility every third of the visibility timeout, so no other
worker takes it while the work runs, for at most `max_hold_s`: past that it
extends no more, and the message returns to its queue when its visibility
runs out, whatever became of the work (worker.isolation stops the work
itself a little earlier). After a stop request (SIGTERM:
scale-in, a Spot notice, `local down`), if the work is still running when
the stop timeout is near, it makes the message visible again at once,
flushes what must not be lost, and exits the process with EXIT_RETURNED,
before ECS's SIGKILL would leave the message hidden for a whole visibility
timeout.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

log = logging.getLogger(__name__)

EXIT_RETURNED = 3  # stopped by a signal before the message in hand could finish

TICK_S = 0.2


class KeepAlive:
    def __init__(
        self,
        *,
        sqs: SQSClient,
        queue_url: str,
        visibility_timeout_s: int,
        stop_timeout_s: float,
        max_hold_s: float | None = None,
        before_exit: Callable[[], None] = lambda: None,
        on_tick: Callable[[bool], None] = lambda holding: None,
    ) -> None:
        self.sqs = sqs
        self.queue_url = queue_url
        self.visibility_timeout_s = visibility_timeout_s
        self.heartbeat_s = max(1.0, visibility_timeout_s / 3)
        self.stop_timeout_s = stop_timeout_s
        self.max_hold_s = max_hold_s
        # Leave time to hand the message back and exit before SIGKILL.
        self.grace_s = min(10.0, stop_timeout_s / 4)
        self.before_exit = before_exit
        self.on_tick = on_tick
        self.stop_requested_at: float | None = None
        self._receipt: str | None = None
        self._message_id = ""
        self._held_since = 0.0
        self._past_limit = False
        self._extended_at = 0.0
        self._lock = threading.Lock()
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="keepalive", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def close(self) -> None:
        self._done.set()

    def request_stop(self) -> None:
        """From a signal handler: only notes the time."""
        if self.stop_requested_at is None:
            self.stop_requested_at = time.monotonic()

    @contextmanager
    def holding(self, receipt_handle: str, message_id: str) -> Iterator[None]:
        """Keep this message alive while the block runs."""
        with self._lock:
            self._receipt = receipt_handle
            self._message_id = message_id
            self._held_since = self._extended_at = time.monotonic()
            self._past_limit = False
        try:
            yield
        finally:
            with self._lock:
                self._receipt = None

    def _watch(self) -> None:
        while not self._done.wait(TICK_S):
            self.on_tick(self._receipt is not None)
            with self._lock:
                receipt = self._receipt
                if receipt is None:
                    continue
                now = time.monotonic()
                stop_at = self.stop_requested_at
                if stop_at is not None and now - stop_at >= self.stop_timeout_s - self.grace_s:
                    self._give_back_and_exit(receipt)
                if now - self._extended_at >= self.heartbeat_s and self._may_extend(now):
                    self._extended_at = now
                    self._extend(receipt, self.visibility_timeout_s)

    def _may_extend(self, now: float) -> bool:
        if self.max_hold_s is None or now - self._held_since < self.max_hold_s:
            return True
        if not self._past_limit:
            self._past_limit = True
            log.warning(
                "message %s held for %.0f s: its visibility is no longer extended",
                self._message_id,
                now - self._held_since,
            )
        return False

    def _extend(self, receipt: str, seconds: int) -> None:
        try:
            self.sqs.change_message_visibility(
                QueueUrl=self.queue_url, ReceiptHandle=receipt, VisibilityTimeout=seconds
            )
        except Exception as e:
            log.warning("heartbeat failed: %s", e)

    def _give_back_and_exit(self, receipt: str) -> None:
        log.warning("stop timeout near, giving message %s back", self._message_id)
        try:
            self._extend(receipt, 0)
            self.before_exit()
        finally:
            os._exit(EXIT_RETURNED)
