"""The AWS CDK app that deploys Drover: storage, queues, the map and reduce
fleets and their operations, composed by `infra.stacks.drover_stack`."""
