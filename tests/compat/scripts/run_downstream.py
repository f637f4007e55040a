"""vec-inf's examples/slurm_dependency/run_downstream.py with one changed import.

The OpenAI client is replaced by the standard library (it is not a dependency here); the
request is the same.
"""

import json
import sys
import urllib.request

from vec_inf_flows.compat import VecInfClient

if len(sys.argv) < 2:
    raise ValueError("Expected server job ID as the first argument.")
job_id = sys.argv[1]

vi_client = VecInfClient()
print(f"Waiting for SLURM job {job_id} to be ready...")
status = vi_client.wait_until_ready(slurm_job_id=job_id)
print(f"Server is ready at {status.base_url}")

request = urllib.request.Request(
    f"{status.base_url}/completions",
    data=json.dumps(
        {
            "model": "SmolLM2-135M-Instruct",
            "prompt": "Where is the capital of Canada?",
            "max_tokens": 20,
        }
    ).encode(),
    headers={"Content-Type": "application/json"},
)
resp = json.load(urllib.request.urlopen(request, timeout=30))
print(resp["choices"][0]["text"] is not None, resp["usage"]["completion_tokens"])
vi_client.shutdown_model(job_id)
