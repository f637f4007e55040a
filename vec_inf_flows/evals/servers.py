"""An ``EvalServer`` for a server this tool launched: URL, weights dir and limits from its files."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
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

EngineArgs = Mapping[str, object] | Iterable[tuple[str, object]]


def _max_model_len(engine_args: EngineArgs) -> int | None:
    pairs = engine_args.items() if isinstance(engine_args, Mapping) else engine_args
    value = str(dict(pairs).get("--max-model-len"))
    return int(value) if value.isdigit() else None


def eval_server(
    model: str,
    base_url: str,
    model_path: str | None,
    engine_args: EngineArgs,
    api_key: SecretStr | str | None = None,
    replicas: int = 1,
) -> EvalServer:
    """lm-eval's view of a READY server: tokenizer = its weights dir, concurrency = its
    ``--max-num-seqs`` (times the replicas behind one router), context = its
    ``--max-model-len``."""
    pairs = list(engine_args.items() if isinstance(engine_args, Mapping) else engine_args)
    key = SecretStr(api_key) if isinstance(api_key, str) else api_key
    return EvalServer(
        model=model,
        base_url=base_url,
        tokenizer=Path(model_path) if model_path else None,
        num_concurrent=(max_num_seqs(pairs) or DEFAULT_CONCURRENCY) * max(1, replicas),
        max_length=_max_model_len(pairs),
        api_key=key,
    )


def job_config(job_dir: str | None, model: str, job_id: str) -> dict[str, Any]:
    """The launch record a job keeps in its directory (empty when there is none)."""
    if not job_dir:
        return {}
    return read_json(Path(job_dir) / f"{model}.{job_id}.json") or {}


def eval_server_for_job(
    client: VecInfClient, job_id: str, *, api_key: SecretStr | str | None = None
) -> EvalServer:
    """``eval_server`` for a job by id. Raises ``ServerError`` if it is not READY."""
    status = client.status(job_id)
    if status.server_status is not ServerStatus.READY or not status.base_url:
        raise ServerError(f"Job {job_id} is {status.server_status.value}, not READY.")
    config = job_config(status.job_dir, status.model_name, job_id)
    return eval_server(
        status.model_name,
        status.base_url,
        config.get("model_path"),
        config.get("engine_args") or {},
        api_key,
    )
