"""End to end: the real client and CLI on the real local Slurm cluster, with the simulator.

Every test here takes the ``sandbox`` fixture (tests/conftest.py): its own state home and log
dir, and every job it started cancelled afterwards, whatever happened.
"""
