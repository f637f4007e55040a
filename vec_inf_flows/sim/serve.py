"""Run one simulated ``vllm serve`` process: start-up log, socket, uvicorn, signals, crash.

The socket is bound early but listens only just before uvicorn prints ``Application startup
complete.``, so /health refuses connections until then and answers as soon as the line is out,
which is the contract vec-inf's ready check (and ours) depends on.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import signal
import socket
import sys
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from vec_inf_flows.sim import fatal, startup
from vec_inf_flows.sim.config import SimConfig
from vec_inf_flows.sim.vllm_log import ENGINE_CORE, VllmLog, write_stderr

if TYPE_CHECKING:
    import uvicorn

    from vec_inf_flows.sim.engine import Engine
    from vec_inf_flows.sim.metrics import EngineMetrics


def run(config: SimConfig) -> int:
    """The process body; returns the exit code (0 on SIGTERM/SIGINT, 1 on failure or crash)."""
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(line_buffering=True)
    log = VllmLog()
    try:
        startup.announce(log, config)
        sock = _bind(config)
    except startup.StartupFailed:
        return 1
    except OSError as exc:
        write_stderr(f"OSError: [Errno {exc.errno}] {exc.strerror}")
        return 1
    try:
        startup.boot_engine(log, config)
    except startup.StartupFailed:
        sock.close()
        return 1
    return asyncio.run(_serve(config, log, sock))


def _bind(config: SimConfig) -> socket.socket:
    """Bind without listening (vLLM binds early too); port 0 lets the kernel choose."""
    host = config.host or "0.0.0.0"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, config.port))
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def cache_config_info(config: SimConfig) -> dict[str, str]:
    block = 128 if config.device == "cpu" else 16
    return {
        "block_size": str(block),
        "cache_dtype": "auto",
        "enable_prefix_caching": str(config.enable_prefix_caching),
        "gpu_memory_utilization": str(config.gpu_memory_utilization),
        "is_attention_free": "False",
        "kv_cache_max_concurrency": f"{config.kv_cache_tokens / config.max_model_len:.2f}",
        "kv_cache_size_tokens": str(config.kv_cache_tokens),
        "num_cpu_blocks": "None",
        "num_gpu_blocks": str(config.kv_cache_tokens // block),
        "prefix_caching_hash_algo": "sha256",
        "sliding_window": "None",
    }


class _DropFinishedLine(logging.Filter):
    """vLLM's uvicorn output has no 'Finished server process' line; keep the .err identical."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not str(record.msg).startswith("Finished server process")


def _shutdown_lines(log: VllmLog, signame: str) -> None:
    log.info("launcher.py:254", "[shutdown] API server: shutdown triggered")
    log.info(
        "launcher.py:270", "[shutdown] API server: stopping engine client mode=abort timeout=0s"
    )
    log.info(
        "core.py:1454", f"[shutdown] EngineCore: trigger received signal={signame}", ENGINE_CORE
    )
    log.info("core.py:1635", "[shutdown] EngineCore: start mode=abort timeout=0s", ENGINE_CORE)
    log.info("core.py:1499", "[shutdown] EngineCore: exiting busy loop", ENGINE_CORE)
    log.info("launcher.py:279", "[shutdown] API server: engine client stopped")
    log.info("launcher.py:282", "[shutdown] API server: signalling HTTP server shutdown")
    log.info("launcher.py:304", "[shutdown] API server: shutting down FastAPI HTTP server")


def _route_table(app: Any) -> list[tuple[str, str]]:
    inner = getattr(app, "app", app)
    table = []
    for route in getattr(inner, "routes", []):
        methods = [m for m in sorted(route.methods or []) if m != "HEAD"]
        table.append((route.path, ", ".join(methods)))
    return table


async def _serve(config: SimConfig, log: VllmLog, sock: socket.socket) -> int:
    import uvicorn

    from vec_inf_flows.sim.answers import AnswerBook
    from vec_inf_flows.sim.api import SimState, build_app
    from vec_inf_flows.sim.engine import Engine
    from vec_inf_flows.sim.metrics import EngineMetrics, VllmCollector
    from vec_inf_flows.sim.vocab import make_vocab

    loop = asyncio.get_running_loop()
    outcome = {"exit_code": 0}
    metrics = EngineMetrics(config.max_model_len)
    engine = Engine(
        metrics,
        max_num_seqs=config.max_num_seqs,
        tokens_per_second=config.tokens_per_second,
        ttft=config.ttft,
        kv_cache_tokens=config.kv_cache_tokens,
        prefix_caching=config.enable_prefix_caching,
    )
    collector = VllmCollector(
        metrics, config.served_model_name, engine.gauges, cache_config_info(config)
    )
    state = SimState(
        config,
        engine,
        collector,
        log,
        random.Random(config.seed),
        on_startup=lambda: sock.listen(),
        vocab=make_vocab(config.tokenizer),
        answers=AnswerBook(config.answers),
    )
    app = build_app(state)
    server = _quiet_server(
        uvicorn.Config(
            app,
            http="h11",
            ws="none",
            lifespan="on",
            log_level="info",
            access_log=not config.disable_access_log,
            use_colors=False,
            timeout_graceful_shutdown=1,
        )
    )
    logging.getLogger("uvicorn.error").addFilter(_DropFinishedLine())

    async def crash() -> None:
        fatal.engine_dead(log)
        state.dead = True
        engine.fail_all()
        await asyncio.sleep(config.dead_linger)
        outcome["exit_code"] = 1
        server.should_exit = True

    background: set[asyncio.Task[None]] = set()

    def on_finished(_: object) -> None:
        limit = config.crash_after
        if limit is not None and engine.completed >= limit and not state.dead:
            state.dead = True
            background.add(loop.create_task(crash()))

    engine.on_finished = on_finished

    def on_signal(signame: str) -> None:
        if server.should_exit:
            server.force_exit = True
            return
        _shutdown_lines(log, signame)
        engine.fail_all()
        server.should_exit = True

    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig.name)
    host = config.host or "0.0.0.0"
    url_host = f"[{host}]" if ":" in host else host
    startup.announce_routes(log, f"http://{url_host}:{sock.getsockname()[1]}", _route_table(app))
    stats = loop.create_task(_log_stats(config, log, engine, metrics))
    try:
        await server.serve(sockets=[sock])
    finally:
        stats.cancel()
    return outcome["exit_code"]


def _quiet_server(config: uvicorn.Config) -> uvicorn.Server:
    """uvicorn's Server without its signal capture (which would re-raise SIGTERM at exit)."""
    import uvicorn

    class Server(uvicorn.Server):
        @contextlib.contextmanager
        def capture_signals(self) -> Generator[None, None, None]:
            yield

    return Server(config)


async def _log_stats(
    config: SimConfig, log: VllmLog, engine: Engine, metrics: EngineMetrics
) -> None:
    """``Engine 000: Avg prompt throughput ...`` every interval while there is activity."""
    if config.disable_log_stats or config.log_stats_interval <= 0:
        return
    device = "CPU" if config.device == "cpu" else "GPU"
    last_prompt = last_gen = last_queries = last_hits = 0.0
    idle_logged = True
    while True:
        await asyncio.sleep(config.log_stats_interval)
        prompt, gen = metrics.value("prompt_tokens"), metrics.value("generation_tokens")
        queries, hits = metrics.value("prefix_cache_queries"), metrics.value("prefix_cache_hits")
        gauges = engine.gauges()
        active = prompt != last_prompt or gen != last_gen or gauges.running or gauges.waiting
        if not active and idle_logged:
            continue
        interval = config.log_stats_interval
        hit_rate = 100.0 * (hits - last_hits) / (queries - last_queries or 1.0)
        log.info(
            "loggers.py:335",
            f"Engine 000: Avg prompt throughput: {(prompt - last_prompt) / interval:.1f} tokens/s, "
            f"Avg generation throughput: {(gen - last_gen) / interval:.1f} tokens/s, "
            f"Running: {gauges.running} reqs, Waiting: {gauges.waiting} reqs, "
            f"{device} KV cache usage: {100.0 * gauges.kv_cache_usage:.1f}%, "
            f"Prefix cache hit rate: {hit_rate:.1f}%",
        )
        idle_logged = not active
        last_prompt, last_gen, last_queries, last_hits = prompt, gen, queries, hits
