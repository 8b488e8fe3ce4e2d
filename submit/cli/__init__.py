"""`python -m submit` (or `drover`): one module per group of commands, each
adding its parsers (`add_parsers`) and the function that runs a command
(`run(args) -> exit code`). The commands parse arguments and print; the work
is done by the modules of `submit` they call with clients and resources.

`main` loads settings and job modules only inside its error handling, and
catches only Drover's own errors (with the exit code each carries) and
botocore's connection errors; anything else is a bug and keeps its
traceback. SIGTERM (what `timeout`, a CI runner's cancel or systemd sends)
ends a command as Ctrl-C does: `run --local` stops its fleet and the
embedded AWS on the way out rather than leave them running.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
import threading
from types import FrameType

from botocore.exceptions import (
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    NoCredentialsError,
    NoRegionError,
    ReadTimeoutError,
)

from submit.cli import fleet, follow, recover, run
from submit.errors import EXIT_FAILED, EXIT_OK, EXIT_USAGE, DroverError, translated

__all__ = ["EXIT_FAILED", "EXIT_OK", "EXIT_USAGE", "build_parser", "main"]

PROG = "python -m submit"

EPILOG = """\
examples:
  python -m submit run --local --job wordcount --top 20 ./books/
  python -m submit local up && python -m submit run --job grep --pattern 'ERROR|WARN' logs/ --wait
  python -m submit run s3://my-bucket/corpus/ --job wordcount --stack Drover --wait
  python -m submit status JOB         python -m submit result JOB --output counts.json
  python -m submit dlq list           python -m submit retry JOB

Commands other than `run --local` talk to the embedded AWS started by
`local up` when it is running, else to the deployed stack named by --stack
(default "Drover"), found through CloudFormation with your AWS credentials.
Exit codes: 0 success; 1 the job failed or AWS refused; 2 bad arguments or
input, found before anything was queued; 130 interrupted (Ctrl-C); 143
terminated (SIGTERM); 141 the output's reader stopped reading (| head).
"""

CONNECTION_ERRORS = (
    EndpointConnectionError,
    ConnectionClosedError,
    ConnectTimeoutError,
    ReadTimeoutError,
    NoCredentialsError,
    NoRegionError,
)


def build_parser(prog: str = PROG) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog,
        description=(
            "Run MapReduce jobs on a Drover fleet: split input into chunks, queue them, "
            "follow the job and fetch its result."
        ),
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for module in (run, follow, recover, fleet):
        module.add_parsers(sub)
    return parser


# The exit codes of a command ended by a signal, as a shell reports them.
EXIT_INTERRUPTED = 128 + signal.SIGINT
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_BROKEN_PIPE = 128 + signal.SIGPIPE


class Terminated(BaseException):
    """SIGTERM arrived: unwinds the command as KeyboardInterrupt does."""


def _terminate(signum: int, frame: FrameType | None) -> None:
    # Once: a second SIGTERM during the teardown does not cut it short.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    raise Terminated


def main(argv: list[str] | None = None, prog: str = PROG) -> int:
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    on_main_thread = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM)
    if on_main_thread:
        signal.signal(signal.SIGTERM, _terminate)
    try:
        with translated():
            code: int = args.run(args)
            return code
    except DroverError as e:
        print(f"{prog}: error: {e}", file=sys.stderr)
        return e.exit_code
    except CONNECTION_ERRORS as e:
        print(f"{prog}: error: AWS unreachable: {e}", file=sys.stderr)
        return EXIT_FAILED
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Terminated:
        print("terminated", file=sys.stderr)
        return EXIT_TERMINATED
    except BrokenPipeError:
        # The reader went away (`| head`): no traceback, and nothing more is
        # written to it, Python's flush at exit included.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    finally:
        if on_main_thread:
            signal.signal(signal.SIGTERM, previous)


def console_main() -> int:
    """The `drover` console script."""
    return main(prog="drover")
