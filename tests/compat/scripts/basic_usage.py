#!/usr/bin/env python
"""vec-inf's examples/api/basic_usage.py with one changed import (and the simulator engine:
this cluster has no GPUs)."""

from vec_inf_flows.compat import LaunchOptions, VecInfClient

# Create the API client
client = VecInfClient()

# List available models
print("Listing available models...")
models = client.list_models()
print(f"Found {len(models)} models")
for model in models[:3]:  # Show just the first few
    print(f"- {model.name} ({model.model_type})")

# Launch a model
model_name = "SmolLM2-135M-Instruct"
print(f"\nLaunching {model_name}...")
response = client.launch_model(model_name, LaunchOptions(engine="sim", time="00:10:00"))
job_id = response.slurm_job_id
print(f"Launched with job ID: {job_id}")

# Wait for the model to be ready
print("Waiting for model to be ready...")
status = client.wait_until_ready(job_id)
print(f"Model is ready at: {status.base_url}")

# Get metrics
print("\nRetrieving metrics...")
metrics = client.get_metrics(job_id)
if isinstance(metrics.metrics, dict):
    for key, value in metrics.metrics.items():
        print(f"- {key}: {value}")

# Shutdown when done
print("\nShutting down model...")
client.shutdown_model(job_id)
print("Model shutdown complete")
