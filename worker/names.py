"""Every string that two parts of Drover must spell alike: environment
variables, stack outputs, the jobs table's schema, object tags.

Plain data, imported by the container image, the stack and the CLI alike;
no boto3, no aws-cdk-lib. Tunable numbers live in `worker.settings`.
"""

from __future__ import annotations

# Environment of a worker process, set by the stack's task definitions or by
# the local fleet.
ENV_TABLE = "DROVER_TABLE"
ENV_MAP_QUEUE_URL = "DROVER_MAP_QUEUE_URL"
ENV_REDUCE_QUEUE_URL = "DROVER_REDUCE_QUEUE_URL"
# What the served queue was made with, written by whoever made it (the
# stack, the local fleet) so that a worker need not ask the queue: its
# dead-letter queue, visibility timeout and maxReceiveCount. A worker that
# lacks any of them reads the queue's attributes instead (worker.wiring).
ENV_MAP_DLQ_URL = "DROVER_MAP_DLQ_URL"
ENV_REDUCE_DLQ_URL = "DROVER_REDUCE_DLQ_URL"
ENV_VISIBILITY_TIMEOUT_S = "DROVER_VISIBILITY_TIMEOUT_S"
ENV_MAX_RECEIVE_COUNT = "DROVER_MAX_RECEIVE_COUNT"
ENV_CLUSTER = "DROVER_CLUSTER"
ENV_REDUCE_SERVICE = "DROVER_REDUCE_SERVICE"
# The map service a reducer wakes when it starts a job's next step.
ENV_MAP_SERVICE = "DROVER_MAP_SERVICE"
ENV_WORKER_ID = "DROVER_WORKER_ID"
# The most seconds one message may run (worker.isolation).
ENV_MAX_TASK_SECONDS = "DROVER_MAX_TASK_SECONDS"
# The map worker's bound when it wakes the reduce fleet, and the reducer's
# when it wakes the map fleet.
ENV_REDUCE_MAX_TASKS = "DROVER_REDUCE_MAX_TASKS"
ENV_MAP_MAX_TASKS = "DROVER_MAP_MAX_TASKS"
# The value of the activity metric's Fleet dimension; workers report only
# where it is set (on Fargate, by the stack).
ENV_ACTIVITY_FLEET = "DROVER_ACTIVITY_FLEET"
# Modules the worker and submit import at start-up for their @register jobs,
# comma-separated: module names, or paths of .py files or package
# directories (worker.jobs.registry).
ENV_JOB_MODULES = "DROVER_JOB_MODULES"
ENV_LOG_LEVEL = "DROVER_LOG_LEVEL"
# Local-mode tuning of a worker: its long poll and stop timeout.
ENV_RECEIVE_WAIT_S = "DROVER_RECEIVE_WAIT_S"
ENV_STOP_TIMEOUT_S = "DROVER_STOP_TIMEOUT_S"
# Set by the local fleet only, which starts its workers beside the embedded
# AWS, before the queues exist: a file it creates once they do. A worker
# given one waits for it before it serves (a deployed worker's queue exists
# before the worker does).
ENV_QUEUES_READY_FILE = "DROVER_QUEUES_READY_FILE"
# The thread of a local fleet that polls the queues' depth, as CloudWatch's
# alarms do for a deployed stack (the benchmark counts its requests apart).
LOCAL_FLEET_THREAD = "drover-local-fleet"
# Set to "1" by the local fleet, and only there: its workers may read the
# local files that a job submitted on the same machine names in place. A
# worker without it refuses such a message, so that no message can make a
# container read its own files.
ENV_READ_LOCAL_FILES = "DROVER_READ_LOCAL_FILES"
# Where the CLI keeps the embedded AWS's state file and worker logs.
ENV_HOME = "DROVER_HOME"

# CloudFormation outputs that `submit --stack NAME` reads to find a deployed
# Drover; the stack must export exactly these keys.
OUTPUT_BUCKET = "BucketName"
OUTPUT_TABLE = "TableName"
OUTPUT_MAP_QUEUE_URL = "MapQueueUrl"
OUTPUT_MAP_DLQ_URL = "MapDeadLetterQueueUrl"
OUTPUT_REDUCE_QUEUE_URL = "ReduceQueueUrl"
OUTPUT_REDUCE_DLQ_URL = "ReduceDeadLetterQueueUrl"
OUTPUT_CLUSTER = "ClusterName"
OUTPUT_MAP_SERVICE = "MapServiceName"
OUTPUT_REDUCE_SERVICE = "ReduceServiceName"
# The deployed maxima: a wake-up never asks for more than the stack allows,
# whatever the local cdk.json says.
OUTPUT_MAP_MAX_TASKS = "MapMaxTasks"
OUTPUT_REDUCE_MAX_TASKS = "ReduceMaxTasks"
# The buckets besides its own that map workers may read inputs from (context
# inputBuckets), as a JSON list: submit refuses any other s3:// input.
OUTPUT_INPUT_BUCKETS = "InputBuckets"
# The deployed task size, which a job's cost estimate prices.
OUTPUT_TASK_CPU = "TaskCpu"
OUTPUT_TASK_MEMORY_MIB = "TaskMemoryMiB"
ALL_OUTPUTS = (
    OUTPUT_BUCKET,
    OUTPUT_TABLE,
    OUTPUT_MAP_QUEUE_URL,
    OUTPUT_MAP_DLQ_URL,
    OUTPUT_REDUCE_QUEUE_URL,
    OUTPUT_REDUCE_DLQ_URL,
    OUTPUT_CLUSTER,
    OUTPUT_MAP_SERVICE,
    OUTPUT_REDUCE_SERVICE,
    OUTPUT_MAP_MAX_TASKS,
    OUTPUT_REDUCE_MAX_TASKS,
    OUTPUT_INPUT_BUCKETS,
    OUTPUT_TASK_CPU,
    OUTPUT_TASK_MEMORY_MIB,
)

DEFAULT_STACK_NAME = "Drover"

# The jobs table's key schema (see worker.ledger.table for its items).
TABLE_PARTITION_KEY = "pk"
TABLE_SORT_KEY = "sk"
TABLE_TTL_ATTRIBUTE = "expires_at"
JOBS_BY_TIME_INDEX = "jobs-by-time"
JOBS_BY_TIME_PARTITION_KEY = "listing"
JOBS_BY_TIME_SORT_KEY = "created_at"
# Every job item carries this listing value, so one index query lists jobs.
JOBS_LISTING = "JOB"

# S3 prefix of intermediate map outputs, expired by a lifecycle rule.
MAP_OUTPUT_PREFIX = "jobs/"
# The worker tags every map output object with this tag; the bucket's
# lifecycle rule expires tagged objects under MAP_OUTPUT_PREFIX after
# `map_output_expiry_days` (S3 lifecycle filters match prefixes and tags, not
# patterns such as jobs/*/map/).
MAP_OUTPUT_TAG_KEY = "drover:kind"
MAP_OUTPUT_TAG_VALUE = "map-output"
# submit tags the inputs it uploads and each job's chunk plan (jobs/*/input/)
# with the same key and this value; another rule expires them after
# `input_expiry_days`.
INPUT_TAG_VALUE = "input"

# The metric workers report in CloudWatch's embedded metric format: whether
# any of a fleet's workers held a message (see worker.activity).
ACTIVITY_NAMESPACE = "Drover"
ACTIVITY_METRIC = "BusyWorkers"
ACTIVITY_DIMENSION = "Fleet"
