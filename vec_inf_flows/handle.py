"""``ServerHandle``: what a launch learned about one server, carried to everything that uses it.

Launch returns a handle; waiting fills in the base URL; workloads, metrics and shutdown take
it. So a workload sends the key the server was launched with and keeps as many requests in
flight as the server runs at once, without asking anyone again.

The API key is a ``SecretStr``: it is never printed and every dump (JSON mode, Prefect results
and parameters, artifacts) shows ``**********``. The handle is frozen; a change is a copy.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from vec_inf_flows.lifecycle.owner import OwnerRecord

# vLLM's default --max-num-seqs for its OpenAI server (and the simulator's): what a server
# launched without the flag runs at once.
VLLM_DEFAULT_MAX_NUM_SEQS = 256
# SGLang's flag for the same limit; without it SGLang sizes the batch from memory, so the
# client keeps the workload's default window.
MAX_NUM_SEQS_NAMES = ("--max-num-seqs", "max-num-seqs", "max_num_seqs")
_MAX_SEQS_FLAGS = {
    "vllm": MAX_NUM_SEQS_NAMES,
    "sim": MAX_NUM_SEQS_NAMES,
    "sglang": ("--max-running-requests",),
}
SGLANG_FALLBACK_SEQS = 16


class ServerHandle(BaseModel):
    """One launched (or attached) model server."""

    model_config = ConfigDict(frozen=True)

    job_id: str = Field(description="Slurm job id (het-job components as MAIN+OFFSET).")
    model_name: str = Field(description="Model served, as requests must name it.")
    base_url: str | None = Field(
        default=None, description="OpenAI base URL (http://node:port/v1), set once READY."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Key the server requires from its clients, if any."
    )
    max_concurrent_sequences: int = Field(
        default=VLLM_DEFAULT_MAX_NUM_SEQS,
        ge=1,
        description="Sequences the engine runs at once (its effective --max-num-seqs).",
    )
    cluster: str | None = Field(
        default=None, description="Name of the cluster block it was launched with, if any."
    )
    job_dir: str | None = Field(default=None, description="The job's directory of files.")
    owner: OwnerRecord | None = Field(
        default=None,
        description="Who launched it (user, host, process; for flows the Prefect API URL and "
        "flow run id), as recorded in the job.",
    )

    @property
    def ready(self) -> bool:
        return self.base_url is not None

    def at(self, base_url: str) -> ServerHandle:
        """This handle once the server answers at ``base_url``."""
        return self.model_copy(update={"base_url": base_url})

    def without_secret(self) -> ServerHandle:
        """A copy safe to keep in results that may be persisted (no key at all)."""
        return self.model_copy(update={"api_key": None})

    def bearer(self) -> str | None:
        """The key in clear, for the Authorization header only."""
        return self.api_key.get_secret_value() if self.api_key is not None else None


def max_num_seqs(engine_args: Mapping[str, object] | Iterable[tuple[str, object]]) -> int | None:
    """``--max-num-seqs`` from a mapping or from ``(flag, value)`` pairs, if given."""
    return _flag_value(engine_args, MAX_NUM_SEQS_NAMES)


def max_concurrent_sequences(
    engine: str, engine_args: Mapping[str, object] | Iterable[tuple[str, object]]
) -> int:
    """What the engine runs at once: its flag when given, else the engine's default."""
    given = _flag_value(engine_args, _MAX_SEQS_FLAGS.get(engine, MAX_NUM_SEQS_NAMES))
    if given is not None:
        return given
    return SGLANG_FALLBACK_SEQS if engine == "sglang" else VLLM_DEFAULT_MAX_NUM_SEQS


def positive_int(value: object) -> int | None:
    if isinstance(value, bool):
        return None
    try:
        number = int(str(value))
    except ValueError:
        return None
    return number if number > 0 else None


def _flag_value(
    engine_args: Mapping[str, object] | Iterable[tuple[str, object]], names: Iterable[str]
) -> int | None:
    wanted = set(names)
    pairs = engine_args.items() if isinstance(engine_args, Mapping) else engine_args
    for name, value in pairs:
        if name in wanted:
            return positive_int(value)
    return None
