"""Every launch option, declared once: its type, what it means, its CLI flags and choices.

This module imports nothing but ``typing``, so the CLI can build its flags from it without
loading pydantic (named tuples rather than dataclasses, which alone cost the CLI 4 ms).
Everything else is generated from ``LaunchOptionFields``:

* ``catalog.options.LaunchOptions`` (pydantic) inherits these annotated fields, and the
  ``Option`` metadata puts each description into its JSON schema, so the block forms
  (``SlurmCluster.options``, ``VecInfServer.options``) and the flows' ``launch_options``
  parameter show them in the Prefect UI;
* ``cli.main`` adds one argparse flag per option that declares ``flags``.

To add an option: add one annotated line here (and, if the catalog should merge it, a field
on ``catalog.schema.ModelConfig``); nothing else lists the options.
"""

from __future__ import annotations

import typing
from typing import Annotated, Any, NamedTuple


class Option(NamedTuple):
    """What a launch option means to people; attached to its annotation as metadata."""

    description: str
    flags: tuple[str, ...] = ()  # argparse flags; none: not offered on the command line
    choices: tuple[str, ...] = ()

    def __get_pydantic_json_schema__(self, core_schema: Any, handler: Any) -> Any:
        """pydantic's hook for annotation metadata: the description reaches every UI form."""
        schema = handler(core_schema)
        schema["description"] = self.description
        return schema


class LaunchOptionFields:
    """Per-launch overrides, named as ``vec-inf`` names them; ``None`` keeps the catalog's value.

    Ordered as the UI form shows them: what people change most often first.
    """

    engine: Annotated[
        str | None,
        Option(
            "Inference engine: vllm, sglang or sim (the bundled simulator).",
            ("--engine",),
            ("vllm", "sglang", "sim"),
        ),
    ] = None
    time: Annotated[
        str | None, Option("Slurm time limit, HH:MM:SS or D-HH:MM:SS.", ("--time",))
    ] = None
    partition: Annotated[str | None, Option("Slurm partition.", ("--partition",))] = None
    qos: Annotated[str | None, Option("Slurm quality of service.", ("--qos",))] = None
    account: Annotated[
        str | None,
        Option(
            "Slurm account charged for the job (optional where none is needed).",
            ("-A", "--account"),
        ),
    ] = None
    num_nodes: Annotated[int | None, Option("Nodes per server.", ("--num-nodes",))] = None
    multi_node_mode: Annotated[
        str | None,
        Option(
            "How a server on several nodes starts them: vLLM's own multi-node executor (native, "
            "the default) or a Ray cluster (ray).",
            ("--multi-node-mode",),
            ("native", "ray"),
        ),
    ] = None
    gpus_per_node: Annotated[int | None, Option("GPUs on each node.", ("--gpus-per-node",))] = None
    cpus_per_task: Annotated[int | None, Option("CPUs for the server.", ("--cpus-per-task",))] = (
        None
    )
    mem_per_node: Annotated[
        str | None, Option("Memory per node, e.g. 64G.", ("--mem-per-node",))
    ] = None
    resource_type: Annotated[
        str | None, Option("GPU type, rendered as --gres=gpu:TYPE:N.", ("--resource-type",))
    ] = None
    vllm_args: Annotated[
        str | dict[str, Any] | None,
        Option(
            "vLLM (and simulator) arguments: '--max-model-len=65536,--max-num-seqs=48', or a "
            "mapping of flag to value. Merged per flag over the catalog's.",
            ("--vllm-args",),
        ),
    ] = None
    sglang_args: Annotated[
        str | dict[str, Any] | None,
        Option("SGLang arguments, in the same forms as vllm_args.", ("--sglang-args",)),
    ] = None
    env: Annotated[
        str | dict[str, str] | None,
        Option(
            "Environment variables for the job: a mapping, or 'K=V,K2=V2' (an item without '=' "
            "is a file of K=V lines). Merged per name.",
            ("--env",),
        ),
    ] = None
    exclude: Annotated[str | None, Option("Nodes the job must avoid.", ("--exclude",))] = None
    nodelist: Annotated[str | None, Option("Nodes the job must run on.", ("--nodelist",))] = None
    work_dir: Annotated[
        str | None, Option("Working directory of the job.", ("-D", "--work-dir"))
    ] = None
    log_dir: Annotated[
        str | None,
        Option("Root of the job log tree (default ~/.vec-inf-logs).", ("--log-dir",)),
    ] = None
    model_weights_parent_dir: Annotated[
        str | None,
        Option("Directory holding the model weight folders.", ("--model-weights-parent-dir",)),
    ] = None
    venv: Annotated[
        str | None,
        Option(
            "Virtual environment to activate, or apptainer / singularity for container mode.",
            ("--venv",),
        ),
    ] = None
    container_image: Annotated[
        str | None, Option("Container image for container mode.", ("--container-image",))
    ] = None
    bind: Annotated[
        str | None,
        Option(
            "Extra container bind paths, comma separated (added to the catalog's).", ("--bind",)
        ),
    ] = None
    hf_model: Annotated[
        str | None,
        Option("Hugging Face model id to serve when no local weights exist.", ("--hf-model",)),
    ] = None
    model_family: Annotated[
        str | None, Option("Model family (also the log sub-directory).", ("--model-family",))
    ] = None
    model_variant: Annotated[str | None, Option("Model variant.", ("--model-variant",))] = None
    model_type: Annotated[
        str | None,
        Option("Model type (LLM, VLM, Text_Embedding ...) of a model not in the catalog."),
    ] = None
    vocab_size: Annotated[int | None, Option("Vocabulary size of a model not in the catalog.")] = (
        None
    )
    data_type: Annotated[
        str | None, Option("Weights data type, passed to the engine as --dtype.")
    ] = None
    python: Annotated[str | None, Option("Python interpreter that runs the job-side launcher.")] = (
        None
    )
    # No flags here: ``launch`` declares --config and --strict itself (vec-inf's spelling, and a
    # switch rather than a value), then passes them on as these options.
    config: Annotated[
        str | None, Option("A models YAML file merged over the catalog for this launch.")
    ] = None
    strict: Annotated[
        bool | None,
        Option("Make pre-submit warnings (weights missing where the job will look) errors."),
    ] = None


class DeclaredOption(NamedTuple):
    """One option as the CLI needs it: its field name, value type and metadata."""

    name: str
    value_type: type[int] | type[str]
    option: Option


def declared_options() -> list[DeclaredOption]:
    """Every option in declaration order (``typing`` evaluates the annotations; no pydantic)."""
    hints = typing.get_type_hints(LaunchOptionFields, include_extras=True)
    found: list[DeclaredOption] = []
    for name, hint in hints.items():
        inner, *metadata = typing.get_args(hint)
        option = next(item for item in metadata if isinstance(item, Option))
        value_type: type[int] | type[str] = int if int in typing.get_args(inner) else str
        found.append(DeclaredOption(name, value_type, option))
    return found
