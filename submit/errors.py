"""The CLI's errors: one root that carries its exit code.

    DroverError (exit 1)
    ├── UsageError (exit 2): bad arguments or input, found before anything
    │   was queued or written
    └── OperationalError (exit 1): the job, AWS or the machine said no

`python -m submit` prints a DroverError as one line and exits with its code;
anything else is a bug and keeps its traceback. Errors of the layers below
(the ledger, S3, botocore) are turned into these at the boundary, with
`from e`, by `translated`.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from botocore.exceptions import ClientError, EndpointConnectionError, NoCredentialsError

from worker.jobs import JobError
from worker.ledger import UnknownJob
from worker.ledger.admin import JobStateError
from worker.settings import SettingsError
from worker.storage import MissingObject

EXIT_OK = 0
EXIT_FAILED = 1  # the job failed, or AWS refused
EXIT_USAGE = 2  # bad arguments or input: nothing was enqueued


class DroverError(Exception):
    exit_code = EXIT_FAILED


class UsageError(DroverError):
    exit_code = EXIT_USAGE


class OperationalError(DroverError):
    exit_code = EXIT_FAILED


@contextmanager
def translated() -> Iterator[None]:
    """Turn the known errors of the layers below into Drover's."""
    try:
        yield
    except (JobError, SettingsError) as e:
        raise UsageError(str(e)) from e
    except (UnknownJob, JobStateError, MissingObject) as e:
        raise OperationalError(str(e)) from e
    except ClientError as e:
        error = e.response.get("Error", {})
        raise OperationalError(
            f"AWS refused {e.operation_name}: {error.get('Code')}: {error.get('Message')}"
        ) from e
    except (EndpointConnectionError, NoCredentialsError) as e:
        raise OperationalError(f"AWS unreachable: {e}") from e
