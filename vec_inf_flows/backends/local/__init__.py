"""Run Slurm job scripts as detached local processes, for machines without Slurm."""

from __future__ import annotations

from vec_inf_flows.backends.local.backend import LocalBackend, default_state_dir

__all__ = ["LocalBackend", "default_state_dir"]
