"""`python -m submit run --local` starts the embedded AWS's process before
the CLI's imports, and the local mode takes that process rather than start
another; any other command starts none."""

from __future__ import annotations

import pytest

from submit import embedded_process
from submit.local import LocalDrover, LocalOptions


@pytest.mark.parametrize(
    "argv",
    [
        [],
        ["status"],
        ["run", "--stack", "Drover", "in.txt"],
        ["run", "--local", "--help"],
        ["run", "-h", "--local"],
    ],
)
def test_no_other_command_starts_it(argv: list[str]) -> None:
    embedded_process.launch_early(argv)
    assert embedded_process.take_early() is None


def test_run_local_starts_it_and_the_local_mode_takes_it() -> None:
    embedded_process.launch_early(["run", "--local", "--job", "wordcount", "in"])
    local = LocalDrover(LocalOptions())
    try:
        # Started before the local mode was made, which took it: once.
        assert local.aws.proc is not None
        assert embedded_process.take_early() is None
        assert LocalDrover(LocalOptions()).aws.proc is None
        assert local.aws.wait_ready() == local.aws.endpoint_url
    finally:
        local.aws.stop()
