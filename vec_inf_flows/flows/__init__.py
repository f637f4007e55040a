"""Prefect flows: serve_and_run, evaluate, batch_serve and cleanup.

Importing this package imports Prefect; the CLI imports it inside commands only.
"""

from vec_inf_flows.flows.batch_serve import batch_serve
from vec_inf_flows.flows.cleanup import cleanup
from vec_inf_flows.flows.evaluate import evaluate
from vec_inf_flows.flows.serve_and_run import serve_and_run

__all__ = ["batch_serve", "cleanup", "evaluate", "serve_and_run"]
