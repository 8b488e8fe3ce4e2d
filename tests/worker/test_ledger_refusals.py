"""A transaction the table refuses for good is said so at once, not retried
as a conflict until the message's receives run out."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from worker.ledger.table import LedgerWriteRefused, cancellation_reasons


def cancelled(*codes: str) -> ClientError:
    return ClientError(
        {
            "Error": {"Code": "TransactionCanceledException", "Message": "cancelled"},
            "CancellationReasons": [{"Code": c, "Message": f"because {c}"} for c in codes],
        },
        "TransactWriteItems",
    )


def test_conflicts_and_failed_conditions_are_returned_for_another_try() -> None:
    reasons = cancelled("None", "ConditionalCheckFailed", "TransactionConflict")
    assert cancellation_reasons(reasons) == [
        "None",
        "ConditionalCheckFailed",
        "TransactionConflict",
    ]


@pytest.mark.parametrize("code", ["ValidationError", "ItemCollectionSizeLimitExceeded"])
def test_a_reason_no_retry_can_change_is_raised_with_its_message(code: str) -> None:
    with pytest.raises(LedgerWriteRefused, match=f"{code}: because {code}"):
        cancellation_reasons(cancelled("None", code))


def test_other_errors_are_not_cancellations() -> None:
    other = ClientError({"Error": {"Code": "ResourceNotFoundException"}}, "TransactWriteItems")
    assert cancellation_reasons(other) is None
