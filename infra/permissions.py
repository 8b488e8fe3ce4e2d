"""What a worker's task role may do: each action with the code that calls
it, on the narrowest resource. tests/infra/test_iam.py derives the calls
from the worker's code and fails on any action here that none makes.

    map role     its queue (consume), its DLQ (send), the reduce queue (send),
                 inputs: uploads under jobs/*/input/ and the inputBuckets,
                 writes: jobs/*/map/* only, the table, the reduce service's
                 desired count, its own task's scale-in protection
    reduce role  its queue (consume), its DLQ (send), reads: jobs/*/map/*,
                 writes: jobs/*/result/* only, the table, its own task's
                 scale-in protection
"""

from __future__ import annotations

# worker.consumer receives and deletes (batched); worker.keepalive extends
# visibility and gives a message back; worker.queues.queue_config reads the
# queue's visibility timeout and redrive policy.
CONSUME = [
    "sqs:ReceiveMessage",
    "sqs:DeleteMessage",
    "sqs:ChangeMessageVisibility",
    "sqs:GetQueueAttributes",
]
# worker.queues.move_to_dead_letter sends to the DLQ; queue_config finds the
# DLQ's URL by the name in the redrive policy.
DEAD_LETTER = ["sqs:SendMessage", "sqs:GetQueueUrl"]
# worker.triggers.trigger_reduce: one message per partition, batched.
SEND = ["sqs:SendMessage"]
# worker.ledger: reads of the job and its items, and its writes: completions
# are transactions of a Put and an Update, failures are Updates. AWS
# authorizes each action of a transaction as the single call.
TABLE = ["dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]
READ_OBJECTS = ["s3:GetObject"]
# Map outputs carry the tag their lifecycle rule expires them by.
WRITE_TAGGED_OBJECTS = ["s3:PutObject", "s3:PutObjectTagging"]
WRITE_OBJECTS = ["s3:PutObject"]
# No code lists a bucket: with this permission a missing key answers 404
# (MissingObject, a clear error) instead of 403.
LIST_BUCKET = ["s3:ListBucket"]
# worker.ecs.TaskProtection: a PUT to the agent's task-protection endpoint,
# which the agent makes as this call.
TASK_PROTECTION = ["ecs:UpdateTaskProtection"]
# worker.ecs.wake_service, by the map worker that completes a job: reads the
# reduce service's desired count, then raises it.
DESCRIBE_SERVICE = ["ecs:DescribeServices"]
UPDATE_SERVICE = ["ecs:UpdateService"]

# Object keys by the S3 layout of worker.storage.
INPUT_KEYS = "jobs/*/input/*"
MAP_OUTPUT_KEYS = "jobs/*/map/*"
RESULT_KEYS = "jobs/*/result/*"
