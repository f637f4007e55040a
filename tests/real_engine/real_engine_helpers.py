"""Helpers of the real-engine tests (re-exported from tests/testkit.py)."""

from __future__ import annotations

from testkit import CLI, REPO, Sandbox, no_engine_processes_left

__all__ = ["CLI", "REPO", "Sandbox", "no_engine_processes_left"]
