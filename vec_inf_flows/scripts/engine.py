"""The engine command line (vLLM, SGLang or the simulator) as quoted bash words.

The port is the literal word ``{port}``: the job-side launcher substitutes a free port at the
last moment and retries with another if the bind fails.
"""

from __future__ import annotations

from vec_inf_flows.catalog.engine_args import to_argv
from vec_inf_flows.errors import ConfigError
from vec_inf_flows.scripts.launcher import PORT_TOKEN
from vec_inf_flows.scripts.quoting import env_name, shell_word
from vec_inf_flows.spec import EXECUTOR_FLAG, MULTI_NODE_EXECUTORS, LaunchSpec

API_KEY_VARIABLE = "VEC_INF_API_KEY"
# vLLM (and the simulator) read their API key from this variable: no key in argv or script text.
VLLM_KEY_VARIABLE = "VLLM_API_KEY"


def _base_command(spec: LaunchSpec) -> list[str]:
    if spec.engine == "vllm":
        return ["vllm", "serve", spec.model_path]
    if spec.engine == "sglang":
        return ["python3", "-m", "sglang.launch_server", "--model-path", spec.model_path]
    return [spec.python, "-m", "vec_inf_flows.sim", "serve", spec.model_path]


def engine_lines(spec: LaunchSpec, *, multi_node: bool = False) -> list[str]:
    """The engine command as lines of bash words: the base command, then one flag per line.

    Literals are quoted; the API key is a variable reference, never its value.
    """
    base = _base_command(spec)
    base += ["--served-model-name", spec.model_name, "--host", "0.0.0.0", "--port", PORT_TOKEN]
    user_args = to_argv(spec.engine_args)
    if multi_node and EXECUTOR_FLAG not in user_args:
        user_args += [EXECUTOR_FLAG, MULTI_NODE_EXECUTORS[spec.multi_node_mode]]
    groups: list[list[str]] = [[shell_word(item) for item in base]]
    for item in user_args:
        if item.startswith("--") or len(groups) == 1:
            groups.append([])
        groups[-1].append(shell_word(item))
    if spec.engine == "sglang" and spec.has_api_key:
        # SGLang has no key variable; bash expands the reference at run time.
        groups.append(["--api-key", f'"${{{API_KEY_VARIABLE}}}"'])
    return [" ".join(group) for group in groups]


def container_words(spec: LaunchSpec) -> list[str]:
    """``apptainer exec ... IMAGE`` prefix, or nothing outside a container.

    The environment enters through ``APPTAINERENV_*`` variables (exported by the script), not
    ``--env K=V``: those survive ``--containall``, allow commas in values, and keep secrets
    out of the process list.
    """
    container = spec.container
    if container is None:
        return []
    words = [container.runtime, "exec"]
    if spec.resources.gpus_per_node > 0:
        words.append("--nv")
    words.append("--containall")
    binds = [spec.model_path] if spec.model_path.startswith("/") else []
    binds += [bind for bind in container.binds if bind not in binds]
    for bind in binds:
        words += ["--bind", bind]
    words.append(container.image)
    return [shell_word(word) for word in words]


def container_env_names(spec: LaunchSpec) -> list[str]:
    """Variables the engine needs inside the container (names only; values stay in the shell)."""
    names = [name for name, _ in spec.env]
    # The server key reaches the engine as VLLM_API_KEY (vLLM, sim) or an argument (SGLang).
    names += [name for name, _ in spec.secret_env if name != API_KEY_VARIABLE]
    if spec.engine in ("vllm", "sim") and spec.has_api_key:
        names.append(VLLM_KEY_VARIABLE)
    unique = list(dict.fromkeys(env_name(name) for name in names))
    return unique


def container_env_prefix(spec: LaunchSpec) -> str:
    if spec.container is None:
        raise ConfigError("No container configured.")
    return "SINGULARITYENV_" if spec.container.runtime == "singularity" else "APPTAINERENV_"
