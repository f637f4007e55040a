"""A stand-in for ``vllm serve`` (vLLM 0.32) for fast tests, benchmarks and fault injection.

Run it as ``python -m vec_inf_flows.sim serve MODEL_PATH [vllm serve flags] [--sim-* flags]``;
tests start it through :class:`vec_inf_flows.sim.process.SimServer`. Nothing here imports the
layers above it, and the heavy modules (uvicorn, starlette) load only when a server starts.
"""
