"""Job scripts (pure rendering) and the job-side launcher that runs the engine."""

from vec_inf_flows.scripts.environment import SECRETS_FILENAME, render_secrets_env
from vec_inf_flows.scripts.render import (
    LAUNCHER_FILENAME,
    batch_job_paths,
    job_side_sources,
    launcher_source,
    render_batch_script,
    render_job_script,
)

__all__ = [
    "LAUNCHER_FILENAME",
    "SECRETS_FILENAME",
    "batch_job_paths",
    "job_side_sources",
    "launcher_source",
    "render_batch_script",
    "render_job_script",
    "render_secrets_env",
]
