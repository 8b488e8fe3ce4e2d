"""The template `cdk deploy` would ship, deployed on the embedded AWS with
moto's IAM checks on, runs jobs: the template, its outputs, submit's stack
discovery and workers started from their task definitions alone agree, and
the least-privilege roles are enough (and no more) for the work: built-in
jobs, a user's jobs built into the image, and a job of several steps."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from submit import dlq
from submit.embedded import provision
from submit.submission import submit_job
from submit.tracking import job_status
from tests.conftest import reference_grep, reference_top_words, reference_wordcount
from tests.deploy.conftest import GRANTED_BUCKET, OTHER_BUCKET, USER_JOBS_DIR, Deployed
from tests.reliability.conftest import until, write_corpus
from tests.worker.test_jobs import numbers_corpus, stats_reference
from worker import settings as cfg
from worker.ledger import ItemKey, ItemState, JobState


def test_a_word_count_of_local_files_runs_on_the_deployed_stack(
    deployed: Deployed, tmp_path: Path
) -> None:
    files = write_corpus(tmp_path / "in", files=3, lines=40, seed=11)
    out = tmp_path / "counts.json"
    run = deployed.submit(
        "run",
        str(tmp_path / "in"),
        "--job",
        "wordcount",
        "--chunk-size",
        "1KB",
        "--partitions",
        "2",
        "--output",
        str(out),
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    assert "SUCCEEDED" in run.stdout
    assert json.loads(out.read_text()) == reference_wordcount(files)
    for command, worker in deployed.workers.items():
        assert worker.poll() is None, f"the {command} worker died:\n{deployed.log(command)}"

    # What it cost, at the deployed task size (the stack's outputs).
    (job_id,) = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("job ")]
    status = deployed.submit("status", job_id, "--json", home=tmp_path / "home")
    cost = json.loads(status.stdout)["cost"]
    assert (cost["vcpu"], cost["memory_gb"]) == (1, 2)
    assert cost["task_seconds"] > 0 and cost["estimated_usd"] > cost["estimated_spot_usd"] > 0
    assert cost["basis"] == "an estimate at the deployed task size"
    text = deployed.submit("status", job_id, home=tmp_path / "home").stdout
    assert "cost       ~$" in text and "on Fargate Spot" in text and "leaves out" in text
    jobs = deployed.submit("jobs", home=tmp_path / "home").stdout
    assert "est. cost" in jobs and "on AWS" not in jobs


def test_a_grep_reads_its_input_in_place_from_a_granted_bucket(
    deployed: Deployed, tmp_path: Path
) -> None:
    files = write_corpus(tmp_path / "in", files=2, lines=50, seed=12)
    s3 = deployed.client("s3")
    named = {}
    for path, data in files.items():
        key = f"corpus/{Path(path).name}"
        s3.put_object(Bucket=GRANTED_BUCKET, Key=key, Body=data)
        named[f"s3://{GRANTED_BUCKET}/{key}"] = data
    out = tmp_path / "matches.json"
    run = deployed.submit(
        "run",
        f"s3://{GRANTED_BUCKET}/corpus/",
        "--job",
        "grep",
        "--pattern",
        r"straße|\bx_1\b",
        "--chunk-size",
        "1KB",
        "--output",
        str(out),
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    assert json.loads(out.read_text()) == reference_grep(named, r"straße|\bx_1\b")


def test_a_users_jobs_built_into_the_image_run_on_the_deployed_stack(
    deployed: Deployed, tmp_path: Path
) -> None:
    """-c jobModules=tests/user: the image holds the directory under its
    name on its PYTHONPATH, and both task definitions name its module in
    DROVER_JOB_MODULES; submit loads the same module by its path."""
    ecs = deployed.client("ecs")
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        (container,) = ecs.describe_task_definition(taskDefinition=arn)["taskDefinition"][
            "containerDefinitions"
        ]
        env = {e["name"]: e["value"] for e in container["environment"]}
        assert env["DROVER_JOB_MODULES"] == "user.statsjobs"
    files = numbers_corpus(31)
    for name, content in files.items():
        (tmp_path / "in").mkdir(exist_ok=True)
        (tmp_path / "in" / name).write_bytes(content)
    for job, params in (("test-user-median", []), ("test-user-distinct", ["--param", "min=100"])):
        out = tmp_path / f"{job}.json"
        run = deployed.submit(
            "run",
            str(tmp_path / "in"),
            "--job",
            job,
            *params,
            "--job-module",
            str(USER_JOBS_DIR / "statsjobs.py"),
            "--chunk-size",
            "1KB",
            "--partitions",
            "2",
            "--output",
            str(out),
            home=tmp_path / "home",
        )
        assert run.returncode == 0, run.stderr
        assert "SUCCEEDED" in run.stdout
        assert json.loads(out.read_text()) == stats_reference(job, files, low=100)
    for command in ("map", "reduce"):
        assert "could not be loaded" not in deployed.log(command)


def test_a_job_of_several_steps_runs_and_its_reducer_wakes_the_map_fleet(
    deployed: Deployed, tmp_path: Path
) -> None:
    """top-words: a count step, then a top-n step whose chunks the last
    reducer of the first step plans from its results and queues. Map
    workers read those results (tagged intermediate), reducers write the
    plan and wake the map service, all within their roles."""
    resources = deployed.resources
    ecs = deployed.client("ecs")
    assert resources.cluster and resources.map_service

    def map_desired() -> int:
        (service,) = ecs.describe_services(
            cluster=resources.cluster, services=[resources.map_service]
        )["services"]
        return int(service["desiredCount"])

    # The map fleet at rest, as it is after scale-in.
    ecs.update_service(cluster=resources.cluster, service=resources.map_service, desiredCount=0)
    files = write_corpus(tmp_path / "in", files=2, lines=60, seed=13)
    out = tmp_path / "top.json"
    run = deployed.submit(
        "run",
        str(tmp_path / "in"),
        "--job",
        "top-words",
        "--param",
        "n=4",
        "--partitions",
        "3",
        "--output",
        str(out),
        home=tmp_path / "home",
    )
    assert run.returncode == 0, run.stderr
    assert "SUCCEEDED" in run.stdout
    expected = reference_top_words(files, 4)
    assert list(json.loads(out.read_text()).items()) == list(expected.items())

    (job_id,) = [line.split()[1] for line in run.stdout.splitlines() if line.startswith("job ")]
    status = json.loads(deployed.submit("status", job_id, "--json", home=tmp_path / "home").stdout)
    assert (status["step"], status["steps"]) == (2, 2)
    # submit woke the map fleet for the first step's one chunk; the reducer
    # that started the second step raised it to that step's chunks.
    second_step_chunks = status["expected"]
    assert second_step_chunks >= 2
    assert map_desired() == second_step_chunks
    raised = f"raised {resources.map_service} desired count from 1 to {second_step_chunks}"
    assert raised in deployed.log("reduce")
    # Both steps' work is in its cost.
    assert status["cost"]["task_seconds"] > 0


def test_an_input_in_a_bucket_the_stack_does_not_grant_is_refused_before_anything_is_written(
    deployed: Deployed, tmp_path: Path
) -> None:
    clients = deployed.clients
    s3 = clients.s3
    s3.put_object(Bucket=OTHER_BUCKET, Key="in.txt", Body=b"words\n")
    jobs_before = clients.ledger(deployed.resources).list_jobs(1000)
    objects_before = s3.list_objects_v2(Bucket=deployed.resources.bucket).get("KeyCount", 0)

    run = deployed.submit(
        "run", f"s3://{OTHER_BUCKET}/in.txt", "--job", "wordcount", home=tmp_path / "home"
    )
    assert run.returncode == 2, run.stderr
    (line,) = run.stderr.strip().splitlines()
    assert f"may not read bucket '{OTHER_BUCKET}'" in line
    assert f"cdk deploy -c inputBuckets={GRANTED_BUCKET},{OTHER_BUCKET}" in line
    assert clients.ledger(deployed.resources).list_jobs(1000) == jobs_before
    assert s3.list_objects_v2(Bucket=deployed.resources.bucket).get("KeyCount", 0) == (
        objects_before
    )
    attributes = clients.sqs.get_queue_attributes(
        QueueUrl=deployed.resources.map_queue_url, AttributeNames=["ApproximateNumberOfMessages"]
    )["Attributes"]
    assert attributes["ApproximateNumberOfMessages"] == "0"


def test_access_denied_on_an_input_is_a_permanent_failure(deployed: Deployed) -> None:
    """A job queued while the stack still granted a bucket, then deployed
    without it: the worker's AccessDenied goes to the DLQ at once, with the
    reason on the chunk."""
    clients = deployed.clients
    clients.s3.put_object(Bucket=OTHER_BUCKET, Key="denied.txt", Body=b"secret words\n")
    granted_then = replace(deployed.resources, input_buckets=(GRANTED_BUCKET, OTHER_BUCKET))
    job_id = submit_job(
        clients,
        granted_then,
        inputs=[f"s3://{OTHER_BUCKET}/denied.txt"],
        job="wordcount",
        params={},
        chunk_size_bytes=1 << 20,
        partitions=1,
    ).job_id

    def failed() -> JobState | None:
        state = job_status(clients, deployed.resources, job_id, details=False).state
        return state if state.terminal else None

    assert until(failed, timeout_s=60, what="the job to fail") == JobState.FAILED
    item = clients.ledger(deployed.resources).item(job_id, ItemKey.chunk(0))
    assert item is not None and (item.state, item.attempts) == (ItemState.FAILED, 1)
    assert item.last_error is not None
    assert item.last_error.startswith(f"AccessDenied: s3://{OTHER_BUCKET}/denied.txt")
    assert "inputBuckets" in item.last_error
    (letter,) = dlq.list_dead_letters(clients, deployed.resources, job_id=job_id)
    assert letter.receives == 1 and letter.error == item.last_error


def test_each_role_may_write_only_its_own_keys(deployed: Deployed) -> None:
    """moto checks S3 requests against the object's ARN, as AWS does."""
    from botocore.exceptions import ClientError

    bucket = deployed.resources.bucket
    allowed = {"map": "jobs/j/map/000000/part-0000.json", "reduce": "jobs/j/result/part-0000.json"}
    for command, credentials in deployed.credentials.items():
        s3 = deployed.session_client("s3", credentials)
        for other, key in allowed.items():
            if other == command:
                s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
                continue
            try:
                s3.put_object(Bucket=bucket, Key=key, Body=b"{}")
            except ClientError as e:
                assert e.response["Error"]["Code"] == "AccessDenied"
            else:
                raise AssertionError(f"the {command} role wrote {key}")
        try:
            s3.get_object(Bucket=OTHER_BUCKET, Key="in.txt")
        except ClientError as e:
            assert e.response["Error"]["Code"] == "AccessDenied"
        else:
            raise AssertionError(f"the {command} role read {OTHER_BUCKET}")


def test_the_local_mode_builds_the_same_table_and_queues_as_the_stack(
    deployed: Deployed,
) -> None:
    clients = deployed.clients
    local = provision(
        s3=clients.s3, sqs=clients.sqs, dynamodb=clients.dynamodb, settings=cfg.load()
    )

    def table(name: str) -> dict[str, object]:
        t = clients.dynamodb.describe_table(TableName=name)["Table"]
        return {
            "keys": t["KeySchema"],
            "attributes": sorted(t["AttributeDefinitions"], key=lambda a: a["AttributeName"]),
            "billing": t["BillingModeSummary"]["BillingMode"],
            "indexes": [
                (i["IndexName"], i["KeySchema"], i["Projection"])
                for i in t.get("GlobalSecondaryIndexes", [])
            ],
        }

    def queue(url: str) -> dict[str, object]:
        attributes = clients.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])[
            "Attributes"
        ]
        redrive = json.loads(attributes.get("RedrivePolicy", "{}"))
        return {
            "visibility": attributes["VisibilityTimeout"],
            "retention": attributes["MessageRetentionPeriod"],
            "wait": attributes["ReceiveMessageWaitTimeSeconds"],
            "receives": redrive.get("maxReceiveCount"),
        }

    stack = deployed.resources
    assert table(local.table) == table(stack.table)
    for mine, theirs in (
        (local.map_queue_url, stack.map_queue_url),
        (local.map_dlq_url, stack.map_dlq_url),
        (local.reduce_queue_url, stack.reduce_queue_url),
        (local.reduce_dlq_url, stack.reduce_dlq_url),
    ):
        assert queue(mine) == queue(theirs)
