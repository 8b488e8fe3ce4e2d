"""Registered jobs. See `worker.jobs.base` for the contract and README for
how to add one."""

from worker.jobs.base import Job, JobError, KeyValueJob
from worker.jobs.registry import get_job, job_names, load_jobs, register

__all__ = ["Job", "JobError", "KeyValueJob", "get_job", "job_names", "load_jobs", "register"]
