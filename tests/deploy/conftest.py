"""Drover as `cdk deploy` would ship it, on the embedded AWS: the template
synthesized from this checkout (with one input bucket granted and a user's
job modules built in, as `cdk deploy -c inputBuckets=drover-test-corpus
-c jobModules=tests/user` would), created by moto's CloudFormation, moto's
IAM checks on, and one map worker and one reducer started from the deployed
task definitions as ECS starts a container: in the image's /app, its entry
point and environment, with the task definition's command and environment,
and nothing added but the endpoint, the region and the task role's
credentials. Every change moto needs is in tests/deploy/shims.py.

The image's /app is built by following the Dockerfile's COPY instructions
from the cloud assembly's image asset, as `cdk deploy` builds it: the
staged build context, the build arguments and the named "jobs" context
(the user's job modules). Paths the image's environment names under /app
point into that directory.

One deployment serves the module's tests; its workers keep running between
them, as a deployed fleet would.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import pytest
from aws_cdk import App

from infra.build import build
from infra.stacks.drover_stack import DOCKERFILE
from submit.clients import Clients
from submit.embedded import REGION, free_port
from submit.resources import Resources, from_stack
from tests.deploy import shims
from worker.clients import RETRIES
from worker.settings import PROJECT_ROOT, load_context

STACK = "Drover"
GRANTED_BUCKET = "drover-test-corpus"
OTHER_BUCKET = "someone-elses-data"
ADMIN = "drover-test-admin"
# A user's directory of job modules (plain modules, no package), from
# outside the worker package: -c jobModules=tests/user.
USER_JOBS_DIR = PROJECT_ROOT / "tests" / "user"
# Where the image keeps the worker, its working directory.
IMAGE_APP = "/app"


def synthesize(outdir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """The template and the image asset's build source, synthesized the way
    app.py does it."""
    context = {
        **load_context(),
        "inputBuckets": GRANTED_BUCKET,
        "jobModules": str(USER_JOBS_DIR),
    }
    app = App(context=context, outdir=str(outdir))
    stack = build(app)
    assembly = app.synth()
    artifact = assembly.get_stack_artifact(stack.artifact_id)
    template: dict[str, Any] = json.loads(Path(artifact.template_full_path).read_text())
    (manifest,) = outdir.glob("*.assets.json")
    (image,) = json.loads(manifest.read_text())["dockerImages"].values()
    source: dict[str, Any] = image["source"]
    source["directory"] = str(outdir / source["directory"])
    return template, source


def _dockerfile() -> str:
    return (PROJECT_ROOT / DOCKERFILE).read_text().replace("\\\n", " ")


def image_entrypoint_and_env() -> tuple[list[str], dict[str, str]]:
    """The worker image's ENTRYPOINT and ENV, read from its Dockerfile."""
    text = _dockerfile()
    (entrypoint,) = re.findall(r"^ENTRYPOINT\s+(.+)$", text, flags=re.MULTILINE)
    env: dict[str, str] = {}
    for line in re.findall(r"^ENV\s+(.+)$", text, flags=re.MULTILINE):
        env.update(pair.split("=", 1) for pair in shlex.split(line))
    return json.loads(entrypoint), env


def _copy(source: Path, root: Path, dest: str) -> None:
    """COPY's rule, with the image's / at `root`: a directory's contents
    into `dest`, a file to `dest` (into it, if `dest` ends with a slash)."""
    target = root / dest.lstrip("/")
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
        return
    if dest.endswith("/"):
        target = target / source.name
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(source, target)


def _expand(text: str, args: dict[str, str]) -> str:
    """${NAME} replaced by the build argument's value."""
    return re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], text)


def build_image_app(source: dict[str, Any], root: Path) -> Path:
    """The image's /app, under `root`, built by the Dockerfile's COPY
    instructions from the asset's build source (its staged context, build
    arguments and named contexts): what `docker build` would put there."""
    stages = re.split(r"^FROM\s+", _dockerfile(), flags=re.MULTILINE)[1:]
    contexts = {name: Path(path) for name, path in source.get("dockerBuildContexts", {}).items()}
    context = Path(source["directory"])
    built: dict[str, Path] = {}
    for n, stage in enumerate(stages):
        header, _, body = stage.partition("\n")
        name = header.split(" AS ")[-1].strip() if " AS " in header else f"stage-{n}"
        if name in contexts:  # a named context replaces the stage
            built[name] = contexts[name]
            continue
        stage_root = root / f"stage-{n}"
        stage_root.mkdir(parents=True)
        args = {
            k: v
            for k, _, v in (
                a.partition("=") for a in re.findall(r"^ARG\s+(\S+)$", body, flags=re.MULTILINE)
            )
        }
        args.update(source.get("dockerBuildArgs", {}))
        for line in re.findall(r"^COPY\s+(.+)$", body, flags=re.MULTILINE):
            *flags_and_source, dest = _expand(line, args).split()
            from_stage = next(
                (f.split("=", 1)[1] for f in flags_and_source if f.startswith("--from=")), None
            )
            (src,) = [f for f in flags_and_source if not f.startswith("--")]
            base = context if from_stage is None else built[from_stage]
            _copy(base / src, stage_root, dest)
        built[name] = stage_root
    app = built[f"stage-{len(stages) - 1}"] / IMAGE_APP.lstrip("/")
    assert (app / "worker" / "__main__.py").is_file(), "the image holds no worker"
    return app


def on_this_machine(env: dict[str, str], app: Path) -> dict[str, str]:
    """The image's environment with its paths under /app pointing at `app`."""
    return {k: re.sub(rf"(?<![\w/]){IMAGE_APP}(?=/|$)", str(app), v) for k, v in env.items()}


def session(credentials: dict[str, str]) -> boto3.session.Session:
    return boto3.session.Session(
        region_name=REGION,
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials.get("AWS_SESSION_TOKEN"),
    )


@dataclass
class Deployed:
    endpoint: str
    template: dict[str, Any]
    admin: dict[str, str]
    resources: Resources
    log_dir: Path
    # Each fleet's task role credentials, by the container's command.
    credentials: dict[str, dict[str, str]]
    # The image's /app, where the workers run.
    app: Path
    workers: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)

    def client(self, service: str) -> Any:
        """A client of the administrator who deployed the stack."""
        return self.session_client(service, self.admin)

    def session_client(self, service: str, credentials: dict[str, str]) -> Any:
        return session(credentials).client(service, endpoint_url=self.endpoint, config=RETRIES)  # type: ignore[call-overload]

    @property
    def clients(self) -> Clients:
        return Clients(
            s3=self.client("s3"),
            sqs=self.client("sqs"),
            dynamodb=self.client("dynamodb"),
            ecs=self.client("ecs"),
        )

    def aws_env(self) -> dict[str, str]:
        return {**self.admin, "AWS_ENDPOINT_URL": self.endpoint, "AWS_DEFAULT_REGION": REGION}

    def submit(self, *args: str, home: Path) -> subprocess.CompletedProcess[str]:
        """`python -m submit ARGS --stack Drover`, as a user with the
        endpoint pointed at the embedded AWS."""
        env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
        env.update(self.aws_env(), DROVER_HOME=str(home))
        return subprocess.run(
            [sys.executable, "-m", "submit", *args, "--stack", STACK],
            cwd=PROJECT_ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def log(self, command: str) -> str:
        return (self.log_dir / f"{command}.log").read_text(errors="replace")


def _start_server(log: Path) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    with log.open("wb") as out:
        server = subprocess.Popen(
            [sys.executable, "-m", "tests.deploy.moto_server", str(port)],
            cwd=PROJECT_ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    endpoint = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"{endpoint}/moto-api/data.json", timeout=2):
                return server, endpoint
        except OSError:
            time.sleep(0.2)
    server.kill()
    pytest.fail(f"the embedded AWS did not start: {log.read_text()}")


def _worker_env(ecs: Any, family: str, app: Path) -> tuple[list[str], dict[str, str]]:
    """A task definition's container as ECS runs it: the image's entry
    point and environment, the definition's command and environment."""
    entrypoint, image_env = image_entrypoint_and_env()
    definition = ecs.describe_task_definition(taskDefinition=family)["taskDefinition"]
    (container,) = definition["containerDefinitions"]
    env = {
        **on_this_machine(image_env, app),
        **{e["name"]: e["value"] for e in container.get("environment", [])},
    }
    argv = [sys.executable if entrypoint[0] == "python" else entrypoint[0], *entrypoint[1:]]
    return [*argv, *container["command"]], env


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Deployed]:
    work = tmp_path_factory.mktemp("deploy")
    template, image_source = synthesize(work / "cdk.out")
    app = build_image_app(image_source, work / "image")
    server, endpoint = _start_server(work / "aws.log")
    workers: dict[str, subprocess.Popen[bytes]] = {}
    try:
        deployed = _deploy(template, endpoint, work, app)
        deployed.workers = workers
        _start_workers(deployed, workers)
        yield deployed
    finally:
        for worker in workers.values():
            worker.kill()  # its work process dies with it
            worker.wait(30)
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def _deploy(template: dict[str, Any], endpoint: str, work: Path, app: Path) -> Deployed:
    # Before moto's IAM checks are on, any credentials do.
    setup = session({"AWS_ACCESS_KEY_ID": "setup", "AWS_SECRET_ACCESS_KEY": "setup"})

    def client(service: str) -> Any:
        return setup.client(service, endpoint_url=endpoint)  # type: ignore[call-overload]

    iam, s3 = client("iam"), client("s3")
    # The user who deploys and submits: an administrator.
    iam.create_user(UserName=ADMIN)
    iam.put_user_policy(
        UserName=ADMIN,
        PolicyName="Administrator",
        PolicyDocument=json.dumps(
            {
                "Version": "2012-10-17",
                "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}],
            }
        ),
    )
    key = iam.create_access_key(UserName=ADMIN)["AccessKey"]
    admin = {
        "AWS_ACCESS_KEY_ID": key["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": key["SecretAccessKey"],
    }
    for bucket in (GRANTED_BUCKET, OTHER_BUCKET):
        s3.create_bucket(Bucket=bucket)

    client("ssm").put_parameter(
        Name=shims.BOOTSTRAP_VERSION_PARAMETER, Value=shims.BOOTSTRAP_VERSION, Type="String"
    )
    cloudformation = client("cloudformation")
    deployable = shims.template_for_moto(template)
    cloudformation.create_stack(
        StackName=STACK,
        TemplateBody=json.dumps(deployable),
        Capabilities=["CAPABILITY_IAM", "CAPABILITY_NAMED_IAM"],
    )
    (stack,) = cloudformation.describe_stacks(StackName=STACK)["Stacks"]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack
    physical = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName=STACK)["StackResourceSummaries"]
    }
    sts = client("sts")
    credentials = {}
    for command, role in shims.task_roles(deployable, physical).items():
        shims.add_moto_authorization(iam, role)
        assumed = sts.assume_role(
            RoleArn=iam.get_role(RoleName=role)["Role"]["Arn"], RoleSessionName=f"{command}-task"
        )["Credentials"]
        credentials[command] = {
            "AWS_ACCESS_KEY_ID": assumed["AccessKeyId"],
            "AWS_SECRET_ACCESS_KEY": assumed["SecretAccessKey"],
            "AWS_SESSION_TOKEN": assumed["SessionToken"],
        }

    # From here on every request is checked against its signer's policies.
    with urllib.request.urlopen(
        urllib.request.Request(
            f"{endpoint}/moto-api/reset-auth",
            data=b"0",
            method="POST",
            # A form content type would have the server parse the body away.
            headers={"Content-Type": "text/plain"},
        ),
        timeout=10,
    ) as resp:
        resp.read()

    return Deployed(
        endpoint=endpoint,
        template=template,
        admin=admin,
        resources=from_stack(session(admin).client("cloudformation", endpoint_url=endpoint), STACK),
        log_dir=work,
        credentials=credentials,
        app=app,
    )


def _start_workers(deployed: Deployed, workers: dict[str, subprocess.Popen[bytes]]) -> None:
    ecs = deployed.client("ecs")
    for arn in ecs.list_task_definitions()["taskDefinitionArns"]:
        argv, env = _worker_env(ecs, arn, deployed.app)
        command = argv[-1]
        env.update(
            AWS_ENDPOINT_URL=deployed.endpoint,
            AWS_DEFAULT_REGION=REGION,
            AWS_REGION=REGION,
            **deployed.credentials[command],
        )
        with (deployed.log_dir / f"{command}.log").open("wb") as out:
            # In the image's working directory, /app.
            workers[command] = subprocess.Popen(
                argv, cwd=deployed.app, env=env, stdout=out, stderr=subprocess.STDOUT
            )
    assert sorted(workers) == ["map", "reduce"]
    # A worker that cannot start from its task definition alone fails the
    # tests here, with its log.
    deadline = time.monotonic() + 60
    for command, worker in workers.items():
        while f"serving {command} queue" not in deployed.log(command):
            if worker.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"the {command} worker did not start:\n{deployed.log(command)}")
            time.sleep(0.2)
