"""Bad input gets one clear line, exit code 2, and nothing is enqueued."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from submit.cli import EXIT_USAGE, main
from submit.clients import Clients
from submit.errors import UsageError
from submit.resources import Resources
from submit.splitting import InputError
from submit.submission import submit_job
from submit.target import Target
from tests.worker.test_jobs import USER_JOBS
from worker.jobs import JobError, load_jobs


def queued(clients: Clients, resources: Resources) -> int:
    attrs = clients.sqs.get_queue_attributes(
        QueueUrl=resources.map_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    return int(attrs["ApproximateNumberOfMessages"])


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"inputs": ["missing.txt"]}, InputError, "missing.txt: no such file"),
        ({"job": "sort"}, JobError, "unknown job 'sort'"),
        ({"job": "grep", "params": {"pattern": "(["}}, JobError, "invalid pattern"),
        ({"job": "grep", "params": {}}, JobError, "parameter 'pattern' is required"),
        ({"chunk_size_bytes": 0}, UsageError, "chunk size must be positive"),
        ({"partitions": 0}, UsageError, "partitions must be from 1"),
    ],
)
def test_submit_rejects_before_enqueueing(
    clients: Clients,
    resources: Resources,
    tmp_path: Path,
    kwargs: dict,
    error: type[Exception],
    message: str,
) -> None:
    good = tmp_path / "in.txt"
    good.write_text("hello world\n")
    args = {
        "inputs": [str(good)],
        "job": "wordcount",
        "params": {},
        "chunk_size_bytes": 100,
        "partitions": 1,
    }
    args.update(kwargs)
    if args["inputs"] == ["missing.txt"]:
        args["inputs"] = [str(tmp_path / "missing.txt")]
    with pytest.raises(error, match=message):
        submit_job(clients, resources, **args)
    assert queued(clients, resources) == 0
    assert clients.dynamodb.scan(TableName=resources.table)["Count"] == 0
    assert "Contents" not in clients.s3.list_objects_v2(Bucket=resources.bucket)


def test_an_input_in_a_bucket_the_stack_does_not_grant_is_refused(
    clients: Clients, resources: Resources, tmp_path: Path
) -> None:
    deployed = replace(resources, input_buckets=("granted-inputs",))
    for name in ("granted-inputs", "elsewhere"):
        clients.s3.create_bucket(Bucket=name)
        clients.s3.put_object(Bucket=name, Key="in.txt", Body=b"hello\n")
    local = tmp_path / "in.txt"
    local.write_text("hello\n")
    with pytest.raises(UsageError) as refused:
        submit_job(
            clients,
            deployed,
            inputs=["s3://granted-inputs/in.txt", str(local), "s3://elsewhere/in.txt"],
            job="wordcount",
            params={},
            chunk_size_bytes=100,
            partitions=1,
        )
    message = str(refused.value)
    assert "may not read bucket 'elsewhere'" in message
    assert "cdk deploy -c inputBuckets=granted-inputs,elsewhere" in message
    assert queued(clients, resources) == 0
    assert clients.dynamodb.scan(TableName=resources.table)["Count"] == 0
    assert "Contents" not in clients.s3.list_objects_v2(Bucket=resources.bucket)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["run", "--local", "--job", "wordcount", "{missing}"], "no such file or directory"),
        (["run", "--local", "--job", "grep", "--pattern", "(", "{good}"], "invalid pattern"),
        (["run", "--local", "--job", "grep", "{good}"], "parameter 'pattern' is required"),
        (
            ["run", "--local", "--job", "wordcount", "--chunk-size", "0", "{good}"],
            "size must be positive",
        ),
        (["run", "--local", "--job", "wordcount", "--chunk-size", "lots", "{good}"], "not a size"),
        (
            ["run", "--local", "--job", "sort", "{good}"],
            "unknown job 'sort' (known: ",
        ),
        (["run", "--local", "--job", "wordcount", "s3://b/k"], "local files only"),
        (
            ["run", "--local", "--job", "top-words", "--param", "n=many", "{good}"],
            "job 'top-words': parameter 'n': expected int, got 'many'",
        ),
        (
            ["run", "--local", "--job", "top-words", "--param", "n=0", "{good}"],
            "parameter 'n': must be 1 or more",
        ),
        (
            ["run", "--local", "--job", "top-words", "--param", "top=3", "{good}"],
            "unknown parameter 'top' (it takes n)",
        ),
        (["run", "--local", "--job", "top-words", "--param", "n", "{good}"], "expected NAME=VALUE"),
        (
            ["run", "--local", "--job-module", "{missing}.py", "--job", "x", "{good}"],
            "no such file or directory",
        ),
        (
            ["run", "--local", "--job-module", "{broken}", "--job", "x", "{good}"],
            "could not be loaded: ZeroDivisionError",
        ),
    ],
)
def test_cli_bad_input_is_one_line_and_exit_2(
    argv: list[str], message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    good = tmp_path / "in.txt"
    good.write_text("hello\n")
    broken = tmp_path / "brokenjobs.py"
    broken.write_text("1 / 0\n")
    argv = [a.format(missing=tmp_path / "missing", good=good, broken=broken) for a in argv]
    with pytest.raises(SystemExit) as exit_info:
        code = main(argv)
        raise SystemExit(code)
    assert exit_info.value.code == EXIT_USAGE
    err = capsys.readouterr().err.strip().splitlines()
    assert message in err[-1]
    assert "Traceback" not in "\n".join(err)


def test_submit_refuses_a_job_the_workers_do_not_load(
    clients: Clients, resources: Resources
) -> None:
    load_jobs([str(USER_JOBS)], strict=True)
    with_stats = Target(clients, resources, "the local fleet", True, job_modules=(str(USER_JOBS),))
    with_stats.check_loads("test-user-mean")
    with_stats.check_loads("wordcount")
    without = Target(clients, resources, "the local fleet", True, job_modules=("otherjobs",))
    with pytest.raises(UsageError, match="comes from module 'statsjobs', which the workers"):
        without.check_loads("test-user-mean")
    Target(clients, resources, "stack Drover", False).check_loads("test-user-mean")
