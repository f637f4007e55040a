"""Lifecycle tests: leases, ownership, shutdown and status truth, held jobs.

The end-to-end ones take the ``sandbox`` fixture (tests/conftest.py) and run simulator jobs on
the real local Slurm cluster; faults Slurm will not make on demand come from shims on PATH.
"""
