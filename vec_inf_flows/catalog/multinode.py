"""How a server spread over several nodes starts them: vLLM's own executor, or a Ray cluster.

``native`` (the default) runs ``vllm serve --nnodes N --node-rank R --master-addr HEAD`` on
every node, ``--headless`` on all but the first: no Ray to install or start, no Ray ports, and
it came up faster here. ``ray`` starts a Ray cluster over the job's nodes and runs ``vllm serve
--distributed-executor-backend ray`` on the first, as vec-inf does: for a vLLM too old for
``--nnodes`` or a site built around Ray. A model's catalog entry (``multi_node_mode``) or the
launch option chooses; an explicit ``--distributed-executor-backend`` in ``vllm_args`` implies it.
"""

from __future__ import annotations

from vec_inf_flows.catalog.schema import ModelConfig
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.spec import EXECUTOR_FLAG, MULTI_NODE_EXECUTORS, ArgValue, MultiNodeMode

DEFAULT_MULTI_NODE_MODE: MultiNodeMode = "native"
# Set per node by the job itself; a value in vllm_args would give every node the same one.
PER_NODE_FLAGS = ("--nnodes", "--node-rank", "--master-addr", "--master-port", "--headless")


def select_multi_node_mode(config: ModelConfig, args: dict[str, ArgValue]) -> MultiNodeMode:
    """The mode for this launch; a contradiction with the engine arguments is a ConfigError."""
    executor = args.get(EXECUTOR_FLAG)
    mode = config.multi_node_mode
    if mode is None:
        mode = "ray" if executor == "ray" else DEFAULT_MULTI_NODE_MODE
    if config.num_nodes == 1 or config.engine != "vllm":
        return mode
    if executor is not None and executor != MULTI_NODE_EXECUTORS[mode]:
        wanted = MULTI_NODE_EXECUTORS[mode]
        raise ConfigError(
            f"Model '{config.model_name}': multi_node_mode {mode} runs vLLM's '{wanted}'"
            f" executor, but vllm_args set {EXECUTOR_FLAG} {executor}."
        )
    if mode == "native":
        given = [flag for flag in PER_NODE_FLAGS if flag in args]
        if given:
            raise ConfigError(
                f"Model '{config.model_name}': drop {', '.join(given)} from vllm_args; a"
                " multi-node job sets them on each node itself."
            )
    return mode
