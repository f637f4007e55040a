"""Evaluations of served models with lm-evaluation-harness (the ``lm-eval`` extra); no Prefect.

``run_lm_eval(EvalServer(...), LmEvalSpec(tasks=[...]), folder)`` returns an ``LmEvalReport``
with typed scores per task; the bundled tasks (``vec_inf_qa_gen``, ``vec_inf_qa_mc``) are always
available by name.
"""

from vec_inf_flows.evals.lm_eval import run_lm_eval
from vec_inf_flows.evals.models import EvalServer, LmEvalReport, LmEvalSpec, Metric, TaskResult

__all__ = ["EvalServer", "LmEvalReport", "LmEvalSpec", "Metric", "TaskResult", "run_lm_eval"]
