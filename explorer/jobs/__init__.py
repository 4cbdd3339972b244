"""The compute backend: heavy work as jobs run by one worker per process (``registry``), their kinds and costs
(``kinds``), and the measured speeds the estimates come from (``rates``)."""

from explorer.jobs.registry import (
    CANCELLED,
    DONE,
    FAILED,
    QUEUED,
    RUNNING,
    Job,
    JobCancelled,
    JobRegistry,
    default_registry,
)

__all__ = ["CANCELLED", "DONE", "FAILED", "QUEUED", "RUNNING", "Job", "JobCancelled", "JobRegistry",
           "default_registry"]
