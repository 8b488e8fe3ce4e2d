"""What a worker's task role may do: each action with the code that calls
it, on the narrowest resource. tests/infra/test_iam.py derives the calls
from the worker's code and fails on any action here that none makes.

    map role     its queue (consume), its DLQ (send), the reduce queue (send),
                 inputs: uploads under jobs/*/input/ and the inputBuckets,
                 and, for a later step of a job of several, the results
                 of the step before it (jobs/*/result/*, only those tagged
                 as intermediate), writes: jobs/*/map/* only, the table,
                 the reduce service's desired count, its own task's
                 scale-in protection
    reduce role  its queue (consume), its DLQ (send), the map queue (send),
                 reads: jobs/*/map/*, lists its job's results, writes:
                 jobs/*/result/* and a later step's chunk plan
                 (jobs/*/step-*/chunks.json) only, the table, the map
                 service's desired count, its own task's scale-in protection

A later step's objects live under jobs/<job>/step-<k>/ (worker.storage),
which the patterns' `*` spans as it spans any `/`.
"""

from __future__ import annotations

# worker.consumer receives and deletes (batched); worker.keepalive extends
# visibility and gives a message back; worker.queues.queue_config reads the
# queue's visibility timeout and redrive policy where the environment does
# not give them (the stack's does: worker.wiring.queue_settings).
CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
]
# worker.queues.move_to_dead_letter sends to the DLQ; queue_config, where
# it runs, finds the DLQ's URL by the name in the redrive policy.
DEAD_LETTER = ["sqs:SendMessage", "sqs:GetQueueUrl"]
# worker.triggers.trigger_reduce: one message per partition, batched; and
# worker.steps.start_next_step: the next step's chunks, batched.
SEND = ["sqs:SendMessage"]
# worker.ledger: reads of the job and its items, and its writes: completions
# are transactions of a Put and an Update, failures are Updates. AWS
# authorizes each action of a transaction as the single call.
TABLE = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
READ_OBJECTS = ["s3:GetObject"]
# Map outputs, and a step's results and chunk plan before the last step,
# carry the tag their lifecycle rule expires them by.
WRITE_TAGGED_OBJECTS = ["s3:PutObject", "s3:PutObjectTagging"]
# worker.storage.result_sizes lists a step's results (ListObjectsV2, which
# IAM authorizes as s3:ListBucket) to plan the next step; for every role a
# GET of a missing key then answers 404 (MissingObject, a clear error)
# instead of 403.
LIST_BUCKET = ["s3:ListBucket"]
# worker.ecs.TaskProtection: a PUT to the agent's task-protection endpoint,
# which the agent makes as this call.
TASK_PROTECTION = ["ecs:UpdateTaskProtection"]
# worker.ecs.wake_service, by the map worker that completes a step's map
# (the reduce service), and by the reducer that starts a job's next step
# (the map service): reads the service's desired count, then raises it.
DESCRIBE_SERVICE = ["ecs:DescribeServices"]
UPDATE_SERVICE = ["ecs:UpdateService"]

# Object keys by the S3 layout of worker.storage.
INPUT_KEYS = "jobs/*/input/*"
MAP_OUTPUT_KEYS = "jobs/*/map/*"
RESULT_KEYS = "jobs/*/result/*"
STEP_PLAN_KEYS = "jobs/*/step-*/chunks.json"
