"""What an lm-eval run is asked to do and what it returns, as typed values (no Prefect here)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr


class _Model(BaseModel):
    model_config = ConfigDict(frozen=True)


class EvalServer(_Model):
    """The READY server lm-eval talks to."""

    model: str = Field(description="The served model name (the `model` of every request).")
    base_url: str = Field(description="The server's OpenAI base URL, e.g. http://node1:41234/v1")
    tokenizer: Path | None = Field(
        default=None,
        description="The model's weights dir: lm-eval tokenizes with it, offline. Required "
        "for the completions endpoint (without it lm-eval looks for the hub for ~50 s).",
    )
    num_concurrent: int = Field(default=1, ge=1, description="Requests lm-eval keeps in flight.")
    max_length: int | None = Field(
        default=None, ge=2, description="The server's context length (lm-eval assumes 2048)."
    )
    api_key: SecretStr | None = Field(
        default=None, description="Sent as OPENAI_API_KEY in lm-eval's environment only."
    )


class LmEvalSpec(_Model):
    """Which tasks to run and how (the flags lm-eval takes on its command line)."""

    tasks: list[str] = Field(min_length=1, description="lm-eval task or group names.")
    include_path: Path | None = Field(
        default=None, description="A folder of task YAMLs (the bundled tasks are always there)."
    )
    endpoint: Literal["completions", "chat-completions"] = Field(
        default="completions",
        description="completions scores multiple choice too; chat-completions only generates.",
    )
    apply_chat_template: bool = Field(
        default=False, description="Wrap prompts in the model's chat template (instruct models)."
    )
    batch_size: int = Field(default=1, ge=1, description="Prompts per request.")
    num_fewshot: int | None = Field(
        default=None,
        ge=0,
        description="Examples shown before each question (the task's own default when empty).",
    )
    limit: int | None = Field(default=None, ge=1, description="At most this many docs per task.")
    log_samples: bool = Field(default=False, description="Also keep every prompt and answer.")
    timeout_s: float | None = Field(
        default=None, gt=0, description="Wall-time limit of one lm-eval process."
    )
    metric: str | None = Field(
        default=None,
        pattern=r"^[\w.-]+(,[\w.-]+)?$",
        description="Score rows by this metric where a task reports it, as NAME or "
        "NAME,FILTER (acc_norm; exact_match,strict-match); default: acc, else exact_match.",
    )


class Metric(_Model):
    """One number of a task: ``exact_match`` after the ``last_word`` filter, say."""

    name: str
    filter: str = "none"
    value: float | None
    stderr: float | None = None


class TaskResult(_Model):
    """A task's scores, or the one line that says why it has none."""

    task: str
    ok: bool
    metrics: list[Metric] = []
    n_samples: int | None = None
    error: str | None = None
    results_file: Path | None = None

    def metric(self, name: str, filter: str | None = None) -> float | None:
        """The value of ``name`` (under ``filter`` when given, else the first filter)."""
        for m in self.metrics:
            if m.name == name and (filter is None or m.filter == filter):
                return m.value
        return None


class LmEvalScore(_Model):
    """One task's primary number, as an evaluation row carries it (``acc`` for multiple
    choice, ``exact_match`` for generation, else the first metric the task reports)."""

    task: str = Field(description="The lm-eval task (or group) name.")
    metric: str | None = Field(default=None, description="The metric the row is scored by.")
    filter: str = Field(default="none", description="The lm-eval filter it was read under.")
    value: float | None = Field(default=None, description="Its value (0 to 1 for acc, em).")
    stderr: float | None = None
    n_samples: int | None = Field(default=None, description="Documents scored.")
    results_file: Path | None = Field(default=None, description="lm-eval's results JSON.")


class LmEvalReport(_Model):
    """Every requested task's outcome for one server, plus where lm-eval's files are."""

    model: str
    base_url: str
    tasks: list[TaskResult]
    output_dir: Path
    elapsed_s: float
    invocations: int = Field(description="How many lm-eval processes ran (1 unless one failed).")

    @property
    def ok(self) -> bool:
        return all(t.ok for t in self.tasks)

    def task(self, name: str) -> TaskResult:
        for result in self.tasks:
            if result.task == name:
                return result
        raise KeyError(name)
