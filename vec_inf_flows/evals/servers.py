"""An ``EvalServer`` for a job this tool launched: URL, weights dir and limits from its files."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import SecretStr

from vec_inf_flows.errors import ServerError
from vec_inf_flows.evals.models import EvalServer
from vec_inf_flows.jobdir import read_json
from vec_inf_flows.models import ServerStatus
from vec_inf_flows.workload.concurrency import DEFAULT_CONCURRENCY, max_num_seqs

if TYPE_CHECKING:
    from vec_inf_flows.client import VecInfClient


def _max_model_len(engine_args: dict[str, Any]) -> int | None:
    value = str(engine_args.get("--max-model-len"))
    return int(value) if value.isdigit() else None


def eval_server_for_job(
    client: VecInfClient, job_id: str, *, api_key: SecretStr | str | None = None
) -> EvalServer:
    """lm-eval's view of a READY job: tokenizer = its weights dir, concurrency = its
    ``--max-num-seqs``, context = its ``--max-model-len``. Raises ``ServerError`` if not READY."""
    status = client.status(job_id)
    if status.server_status is not ServerStatus.READY or not status.base_url:
        raise ServerError(f"Job {job_id} is {status.server_status.value}, not READY.")
    config: dict[str, Any] = {}
    if status.job_dir:
        config = read_json(Path(status.job_dir) / f"{status.model_name}.{job_id}.json") or {}
    engine_args = config.get("engine_args") or {}
    model_path = config.get("model_path")
    key = SecretStr(api_key) if isinstance(api_key, str) else api_key
    return EvalServer(
        model=status.model_name,
        base_url=status.base_url,
        tokenizer=Path(model_path) if model_path else None,
        num_concurrent=max_num_seqs(engine_args) or DEFAULT_CONCURRENCY,
        max_length=_max_model_len(engine_args),
        api_key=key,
    )
