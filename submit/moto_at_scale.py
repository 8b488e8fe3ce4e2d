"""moto at the scale of a 20,000-chunk job: patches to moto's server,
applied only in the embedded AWS's own process (`python -m
submit.embedded`, see `apply`), never to the moto of tests or of anything
else.

moto keeps a queue's messages in a list and a table's items in dicts, and
walks all of them on calls that AWS answers in constant time. A job of a
few hundred chunks never notices; one of thousands spends its time there,
and every call grows with the queue or the table: before these patches,
on this project's machine, a 2,000-chunk job took 50 s to queue and 320 s
to run (a receive cost 50 ms with 1,000 messages queued, 214 ms with
4,000; a transaction 32 ms with 1,000 items, 155 ms with 4,000). With
them, each of those calls costs about the same at 20,000 as at 1,000
(a receive 1.1 to 1.4 ms, a transaction 1.7 ms), the 2,000-chunk job
runs in 37 s and a 20,000-chunk one in under five minutes (README,
"Benchmarks").

Each patch keeps what the call answers, its errors and its effects, and
changes only how much it walks:

1. DynamoDB's TransactWriteItems deep-copies every table it writes to, all
   its items, so that it can put the copy back if a condition fails. It
   now copies the items the transaction names, and puts those back.
2. SQS reads the clock (datetime arithmetic, some 5 µs) for each message
   of each walk; it reads `time.time()` now, the same instant in the same
   unit (moto's own clock is wall time, with no freezing in this process).
3. A receive builds the list of every visible message and takes the first
   ten; it now walks the messages only as far as it takes them.
4. Every call that looks at a queue's attributes (a send does, to see
   whether it deduplicates by content; a receive does, per message, for
   the retention period) counts the queue's visible, in-flight and delayed
   messages, three walks, and GetQueueAttributes does it again for each
   attribute named. Now they are counted once per GetQueueAttributes that
   asks for them, in one walk, and never by a call that does not return
   them.
5. A delete walks every message twice to remove one; it now stops at the
   message, and removes it from the list under the queue's own lock, so a
   message sent meanwhile is not lost with the list it was appended to.
6. Every request, to any service, is routed by matching the host it names
   (for a local endpoint, one inferred from the request's signature, such
   as sqs.us-east-1.amazonaws.com) against each service's URL patterns in
   turn, several hundred regular expressions, under one lock for the whole
   server: a millisecond or more per request. A host's service is now
   looked up once and remembered (the patterns never change).
7. A long poll waits its whole time (up to 20 s) even when its client has
   gone (a worker scaled in, or killed, while it waited), and hands the
   next message sent to the dead connection, where the message stays
   hidden for the visibility timeout: on `local up`, a job submitted within
   20 s of a scale-in waited 6 s more in each phase. A long poll now ends
   within a second of its client closing the connection, and a message it
   took in that second is made visible again.

The patches are written against one version of moto (`MOTO_VERSION`):
with another, `apply` leaves moto as it is (correct, only slow at scale)
and says so in the embedded AWS's log.
"""

from __future__ import annotations

import contextlib
import copy
import logging
import select
import socket
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from importlib.metadata import version
from typing import Any

log = logging.getLogger(__name__)

MOTO_VERSION = "5.2.5"

_applied = False


def apply() -> bool:
    """Patch moto in this process, once; False (and a warning) if the
    installed moto is not the version the patches were written for."""
    global _applied
    if _applied:
        return True
    installed = version("moto")
    if installed != MOTO_VERSION:
        log.warning(
            "moto %s is not %s: the embedded AWS runs unpatched, slow for jobs of thousands "
            "of chunks (submit/moto_at_scale.py)",
            installed,
            MOTO_VERSION,
        )
        return False
    _patch_dynamodb_transactions()
    _patch_sqs()
    _patch_long_polls()
    _patch_routing()
    _applied = True
    return True


# 1. DynamoDB transactions ------------------------------------------------


class _CopyKeepingTables:
    """Stands for the `copy` module in moto.dynamodb.models, whose one deep
    copy of a table is the transaction's backup (`transact_write_items`):
    that copy is the table itself, and the patched transaction keeps and
    restores the items it writes instead. Every other copy is a copy."""

    def __init__(self, table_type: type) -> None:
        self.table_type = table_type

    def deepcopy(self, x: Any, memo: dict[int, Any] | None = None) -> Any:
        return x if isinstance(x, self.table_type) else copy.deepcopy(x, memo)

    def __getattr__(self, name: str) -> Any:
        return getattr(copy, name)


def _patch_dynamodb_transactions() -> None:
    import moto.dynamodb.models as models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original = models.DynamoDBBackend.transact_write_items

    def touched(backend: Any, actions: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
        """(table, hash key, range key, a copy of the item or None) for each
        item the actions name, and (table, length) for each stream."""
        saved: dict[tuple[Any, ...], tuple[Any, ...]] = {}
        for action in actions:
            for op_type, op in action.items():
                table = backend.tables.get(op.get("TableName")) if isinstance(op, dict) else None
                if table is None:
                    continue
                attrs = op.get("Item") if op_type == "Put" else op.get("Key")
                if not isinstance(attrs, dict) or table.hash_key_attr not in attrs:
                    continue  # moto rejects the action itself; nothing to keep
                hash_key = DynamoType(attrs[table.hash_key_attr])
                range_key = None
                if table.range_key_attr is not None:
                    if table.range_key_attr not in attrs:
                        continue
                    range_key = DynamoType(attrs[table.range_key_attr])
                item = table.get_item(hash_key, range_key)
                saved.setdefault(
                    (id(table), hash_key, range_key),
                    (table, hash_key, range_key, copy.deepcopy(item)),
                )
                if table.stream_shard is not None:
                    saved.setdefault((id(table),), (table, len(table.stream_shard.items)))
        return list(saved.values())

    def restore(saved: list[tuple[Any, ...]]) -> None:
        for entry in saved:
            if len(entry) == 2:
                table, length = entry
                del table.stream_shard.items[length:]
                continue
            table, hash_key, range_key, item = entry
            if range_key is None:
                if item is None:
                    table.items.pop(hash_key, None)
                else:
                    table.items[hash_key] = item
            elif item is None:
                table.items[hash_key].pop(range_key, None)
            else:
                table.items[hash_key][range_key] = item

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = touched(self, transact_items)
        try:
            original(self, transact_items)
        except BaseException:
            restore(saved)
            raise

    setattr(models, "copy", _CopyKeepingTables(Table))  # noqa: B010 (the module's global)
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


# 2 to 5. SQS -------------------------------------------------------------


def _now_s() -> float:
    return time.time()


def _now_ms() -> float:
    return time.time() * 1000.0


# Per server thread: whether the call under way returns a queue's
# approximate counts (None: it does not, so they are not counted), and
# those counted so far in it, by queue.
_calls = threading.local()


@contextmanager
def _counts_scope(returned: bool) -> Iterator[None]:
    outer = getattr(_calls, "counts", None)
    if outer is None:  # the outermost call decides
        _calls.counts = {} if returned else False
    try:
        yield
    finally:
        if outer is None:
            _calls.counts = None


class _VisibleMessages:
    """A queue's visible, undelayed messages, found as they are iterated
    (moto's `Queue.messages` is a list of all of them)."""

    def __init__(self, messages: list[Any]) -> None:
        self._messages = tuple(messages)

    def __iter__(self) -> Iterator[Any]:
        now = _now_ms()
        for m in self._messages:
            if now > m.visible_at and not now < m.delayed_until:
                yield m

    def __bool__(self) -> bool:
        return next(iter(self), None) is not None

    def __len__(self) -> int:
        return sum(1 for _ in self)


def _patch_sqs() -> None:
    import moto.sqs.models as models
    from moto.sqs.exceptions import ReceiptHandleIsInvalid

    # The module's own names for moto's clock.
    setattr(models, "unix_time", _now_s)  # noqa: B010
    setattr(models, "unix_time_millis", _now_ms)  # noqa: B010
    queue_type: Any = models.Queue
    backend_type: Any = models.SQSBackend

    def counts(queue: Any) -> tuple[int, int, int]:
        """(visible, in flight, delayed), in one walk, once per call."""
        memo = getattr(_calls, "counts", None)
        if memo is False:
            return 0, 0, 0  # the call under way never returns them
        if memo is not None and id(queue) in memo:
            result: tuple[int, int, int] = memo[id(queue)]
            return result
        now = _now_ms()
        visible = in_flight = delayed = 0
        for m in tuple(queue._messages):
            is_visible = now > m.visible_at
            is_delayed = now < m.delayed_until
            visible += is_visible and not is_delayed
            in_flight += not is_visible
            delayed += is_delayed
        if memo is not None:
            memo[id(queue)] = visible, in_flight, delayed
        return visible, in_flight, delayed

    queue_type.messages = property(lambda self: _VisibleMessages(self._messages))
    queue_type.approximate_number_of_messages = property(lambda self: counts(self)[0])
    queue_type.approximate_number_of_messages_not_visible = property(lambda self: counts(self)[1])
    queue_type.approximate_number_of_messages_delayed = property(lambda self: counts(self)[2])

    counted = {
        "All",
        "ApproximateNumberOfMessages",
        "ApproximateNumberOfMessagesNotVisible",
        "ApproximateNumberOfMessagesDelayed",
    }

    def scoped(method: Callable[..., Any], returned: Callable[..., bool]) -> Callable[..., Any]:
        def call(self: Any, *args: Any, **kwargs: Any) -> Any:
            with _counts_scope(returned(*args, **kwargs)):
                return method(self, *args, **kwargs)

        return call

    def asks_for_counts(queue_name: str, attribute_names: list[str]) -> bool:
        return bool(counted.intersection(attribute_names))

    backend_type.get_queue_attributes = scoped(backend_type.get_queue_attributes, asks_for_counts)
    for name in ("send_message", "receive_message", "is_message_valid_based_on_retention_period"):
        setattr(backend_type, name, scoped(getattr(backend_type, name), lambda *a, **k: False))

    def delete_message(self: Any, receipt_handle: str) -> None:
        if receipt_handle in self.deleted_messages:
            return  # deleted already: moto answers a second delete quietly
        found = next(
            (
                m
                for m in tuple(self._messages)
                if m.receipt_handle == receipt_handle or receipt_handle in m._old_receipt_handles
            ),
            None,
        )
        if found is None:
            raise ReceiptHandleIsInvalid()
        self.pending_messages.discard(found)
        self.deleted_messages.update(found.all_receipt_handles)
        with self._messages_lock:  # add_message appends under it
            messages = self._messages
            try:
                i = messages.index(found)  # by identity: messages have no __eq__
            except ValueError:
                return  # a concurrent delete of the same message removed it
            self._messages = messages[:i] + messages[i + 1 :]

    queue_type.delete_message = delete_message


# 6. Routing ------------------------------------------------------------------


def _patch_routing() -> None:
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    app_type: Any = DomainDispatcherApplication
    find = app_type.get_backend_for_host
    # host -> backend name; read and filled under the dispatcher's own lock,
    # which its one caller, get_application, holds.
    found: dict[str | None, Any] = {}

    def get_backend_for_host(self: Any, host: str | None) -> Any:
        if host not in found:
            found[host] = find(self, host)
        return found[host]

    app_type.get_backend_for_host = get_backend_for_host


# 7. Long polls of clients that have gone -------------------------------------

# How long one wait inside a long poll lasts before the client is looked at.
POLL_SLICE_S = 1


def _client_gone(sock: Any) -> bool:
    """Whether the peer of a connection waiting for its answer has closed
    it: a client sends nothing more until it has the answer, so a readable
    socket with nothing to read is one whose client has gone."""
    try:
        readable, _, _ = select.select([sock], [], [], 0)
        return bool(readable) and sock.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):  # reset, or closed and its descriptor gone
        return True


def _patch_long_polls() -> None:
    import moto.sqs.models as models
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    app_type: Any = DomainDispatcherApplication
    serve = app_type.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        # The connection of the request this server thread answers.
        _calls.socket = environ.get("werkzeug.socket")
        try:
            return serve(self, environ, start_response)
        finally:
            _calls.socket = None

    app_type.__call__ = call

    backend_type: Any = models.SQSBackend
    receive = backend_type.receive_message

    def receive_message(
        self: Any, queue_name: str, count: int, wait_seconds_timeout: int, *args: Any, **kw: Any
    ) -> Any:
        sock = getattr(_calls, "socket", None)
        if sock is None or wait_seconds_timeout <= POLL_SLICE_S:
            return receive(self, queue_name, count, wait_seconds_timeout, *args, **kw)
        end = time.monotonic() + wait_seconds_timeout
        while True:
            got = receive(self, queue_name, count, POLL_SLICE_S, *args, **kw)
            if _client_gone(sock):
                for message in got:  # taken for no one: visible again at once
                    with contextlib.suppress(Exception):
                        self.change_message_visibility(queue_name, message.receipt_handle, 0)
                return []
            if got or time.monotonic() >= end:
                return got

    backend_type.receive_message = receive_message
