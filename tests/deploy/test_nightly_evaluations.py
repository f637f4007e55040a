"""The nightly evaluation as its users live with it: two runs of the deployed ``evaluate`` started
through the API as the UI starts them, each in a folder of its own and filed in one history; the
second scores lower, and the shipped automation, created with the README's command, sends its
notification to a real webhook (a small HTTP server here).
"""

from __future__ import annotations

import fnmatch
import json
import subprocess
import sys
import threading
import uuid
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
import yaml
from deploy_helpers import REPO, Deployed, clean_environment, wait_until
from test_deployments import FAST, SIM, explain, run_to_the_end

from vec_inf_flows.evals.history import read_history

pytestmark = pytest.mark.slurm

MODEL = "SmolLM2-135M-Instruct"
AUTOMATION = REPO / "deployments" / "automations" / "eval-regression.yaml"
QUESTIONS = [
    ("What is the capital of France?", "Paris"),
    ("What is the capital of Italy?", "Rome"),
    ("What is 2 + 2?", "4"),
    ("What colour is the sky?", "blue"),
]


class Webhook:
    """Collects the bodies POSTed to it, as a chat service's incoming webhook would."""

    def __init__(self) -> None:
        received: list[str] = []
        self.received = received

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                received.append(self.rfile.read(int(self.headers["Content-Length"])).decode())
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    try:
        yield hook
    finally:
        hook.server.shutdown()


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> str:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return str(path)


def answer_book(path: Path, right: int) -> str:
    return write_jsonl(
        path,
        [
            {"prompt": question, "answer": answer if n < right else "no idea"}
            for n, (question, answer) in enumerate(QUESTIONS)
        ],
    )


def prefect_python(api_url: str, code: str) -> str:
    env = clean_environment(PREFECT_API_URL=api_url)
    done = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def create_automation(deployed: Deployed, webhook: Webhook) -> str:
    """A webhook notification block, then the README's command with it; the automation's id."""
    block = f"eval-alerts-{uuid.uuid4().hex[:8]}"
    api_url = str(deployed.api.http.base_url).rstrip("/")
    prefect_python(
        api_url,
        "from prefect.blocks.notifications import CustomWebhookNotificationBlock as Hook\n"
        f"Hook(name='alerts', url={webhook.url!r},"
        " json_data={'subject': '{{subject}}', 'body': '{{body}}'})"
        f".save({block!r}, overwrite=True)\n",
    )
    env = clean_environment(PREFECT_API_URL=api_url)
    script = "deployments/automations/create_automation.py"
    done = subprocess.run(
        [sys.executable, script, "--notify", f"custom-webhook/{block}"],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip().rsplit(" ", 1)[-1]


def matches_trigger(event: dict[str, Any]) -> bool:
    """Does the event satisfy the shipped automation's trigger (its expect and match)?"""
    trigger = yaml.safe_load(AUTOMATION.read_text())["trigger"]
    resource = event["resource"]
    return event["event"] in trigger["expect"] and all(
        fnmatch.fnmatchcase(resource.get(label, ""), pattern)
        for label, pattern in trigger["match"].items()
    )


def test_two_nightly_runs_are_filed_and_a_falling_score_notifies(
    deployed: Deployed, webhook: Webhook, tmp_path: Path
) -> None:
    automation_id = create_automation(deployed, webhook)
    rows = [
        {"id": f"q{n}", "prompt": question, "expected": answer, "max_tokens": 8}
        for n, (question, answer) in enumerate(QUESTIONS)
    ]
    dataset = write_jsonl(tmp_path / "questions.jsonl", rows)
    results = tmp_path / "results"

    def nightly(right: int) -> dict[str, Any]:
        book = answer_book(tmp_path / f"answers-{right}.jsonl", right)
        options = {**SIM, "vllm_args": f"{SIM['vllm_args']},--sim-answers={book}"}
        parameters = {
            "datasets": [dataset],
            "output_dir": str(results),
            "launch_options": options,
            **FAST,
        }
        return run_to_the_end(deployed, "evaluate/nightly", parameters)

    try:
        runs = [nightly(right=3), nightly(right=1)]

        for run in runs:
            assert run["state_type"] == "COMPLETED", explain(deployed, run)
        history = read_history(results / "nightly" / "history.jsonl")
        assert [entry.flow_run_id for entry in history] == [run["id"] for run in runs]
        assert [entry.rows[0].score for entry in history] == [0.75, 0.25]
        folders = {Path(entry.folder) for entry in history}
        assert len(folders) == 2 and all(folder.parent == results / "nightly" for folder in folders)
        tables = [
            json.loads(artifact["data"])
            for run in runs
            for artifact in deployed.api.artifacts(run["id"])
            if artifact["key"] == "vec-inf-evaluation-nightly"
        ]
        assert [(t[0]["OK"], t[0]["Score"], t[0]["Change"]) for t in tables] == [
            ("4", "0.750", ""),
            ("4", "0.250", "-0.500"),
        ]

        def regression() -> list[dict[str, Any]]:
            return deployed.api.events(runs[1]["id"], "vec-inf.eval.regression")

        (event,) = wait_until(regression, 30, "the regression event of the second run")
        assert matches_trigger(event)
        assert event["resource"]["vec-inf.model"] == MODEL
        assert event["payload"]["previous_flow_run_id"] == runs[0]["id"]
        assert deployed.api.events(runs[0]["id"], "vec-inf.eval.regression") == []

        (message,) = wait_until(lambda: webhook.received, 60, "the automation's notification")
        body = json.loads(message)
        assert f"{MODEL} on nightly" in body["subject"]
        assert "scored 0.25 on" in body["body"] and "previous run's 0.75" in body["body"]
    finally:
        deployed.api.http.delete(f"/automations/{automation_id}")
