"""Shared pieces of the end-to-end tests (re-exported from tests/testkit.py)."""

from __future__ import annotations

from testkit import CLI, REPO, Sandbox

SIM = {"engine": "sim", "time": "00:10:00"}

__all__ = ["CLI", "REPO", "SIM", "Sandbox"]
