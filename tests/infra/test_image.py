"""The worker image: slim official Python, only the worker and its
dependencies, a non-root user, `python -m worker` as entry point."""

from __future__ import annotations

import json
import re

from infra.stacks.drover_stack import DOCKERFILE
from worker.settings import PROJECT_ROOT

DOCKERFILE_TEXT = (PROJECT_ROOT / DOCKERFILE).read_text()


def instructions(name: str) -> list[str]:
    return re.findall(rf"^{name}\s+(.+)$", DOCKERFILE_TEXT, flags=re.MULTILINE)


def test_base_is_a_slim_official_python_3_11_or_newer_pinned_by_digest() -> None:
    base = instructions("FROM")[-1]
    match = re.fullmatch(r"python:3\.(\d+)-slim(-\w+)?@sha256:[0-9a-f]{64}", base)
    assert match and int(match.group(1)) >= 11, base


def test_worker_package_is_at_the_import_root_and_runs_as_a_module() -> None:
    assert instructions("WORKDIR") == ["/app"]
    assert "worker /app/worker" in instructions("COPY")
    (entrypoint,) = instructions("ENTRYPOINT")
    assert json.loads(entrypoint) == ["python", "-m", "worker"]
    assert not instructions("CMD")


def test_installs_only_the_worker_requirements() -> None:
    (install,) = instructions("RUN pip")
    assert install.split()[-1] == "/app/worker/requirements.txt"


def test_runs_as_a_non_root_user() -> None:
    users = instructions("USER")
    assert users and users[-1] not in ("root", "0")


def test_build_context_holds_only_the_worker() -> None:
    text = (PROJECT_ROOT / ".dockerignore").read_text()
    patterns = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert patterns[:2] == ["*", "!worker/"]


def test_job_modules_come_from_their_own_build_context_onto_the_path() -> None:
    """`-c jobModules=DIR` passes DIR as the build context "jobs": the stage
    of that name is replaced by it and copied under its name to a directory
    on PYTHONPATH."""
    stages = instructions("FROM")
    assert stages[0] == "scratch AS jobs"
    assert "--from=jobs . /app/jobs/${JOB_PACKAGE}/" in instructions("COPY")
    assert "PYTHONPATH=/app/jobs" in instructions("ENV")


def test_without_job_modules_the_jobs_stage_still_holds_a_file() -> None:
    """Without -c jobModules the "jobs" stage is the Dockerfile's own, and
    `COPY --from=jobs` must find something in it on any builder: the stage
    copies in a file of the build context (.dockerignore keeps worker/)."""
    jobs_stage = DOCKERFILE_TEXT.split("FROM scratch AS jobs\n", 1)[1].split("\nFROM ", 1)[0]
    (copy,) = re.findall(r"^COPY\s+(\S+)\s+/$", jobs_stage, flags=re.MULTILINE)
    assert copy.startswith("worker/")
    assert (PROJECT_ROOT / copy).is_file()
