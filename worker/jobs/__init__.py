"""Registered jobs. See `worker.jobs.base` for the contract and the README,
"Write your own job", for a walk-through."""

from worker.jobs.base import Job, JobError, Param, Step
from worker.jobs.registry import get_job, job_class, job_names, load_jobs, register

__all__ = [
    "Job",
    "JobError",
    "Param",
    "Step",
    "get_job",
    "job_class",
    "job_names",
    "load_jobs",
    "register",
]
