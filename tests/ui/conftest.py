"""A real Chromium on the deployed Prefect server's UI (the session's server, deployments and
worker from tests/conftest.py), and the blocks its pickers offer.

Chromium is Debian's (``scripts/chromium.sh`` installs it), driven by Playwright through its
``executable_path``: Playwright's own browser downloads are never used.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml
from deploy_helpers import REPO, Deployed, Server
from prefect_ui import CHROMIUM_FLAGS, VIEWPORT, Blocks, PrefectUI

if TYPE_CHECKING:
    from playwright.sync_api import BrowserContext

CHROMIUM = os.environ.get("VEC_INF_CHROMIUM", "/usr/bin/chromium")
SETUP_HINT = "run scripts/setup.sh and scripts/chromium.sh (scripts/test.sh runs both)"
# Screenshots go here when set (docs/ui refreshes the README's pictures), else to a temporary
# directory: every run takes them either way.
SCREENSHOTS_ENV = "VEC_INF_UI_SCREENSHOTS"


# Per module, not per session: Playwright's sync API runs an event loop in this thread until it
# stops, and every later test calling asyncio.run() would fail while it runs.
@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Iterator[BrowserContext]:
    """One headless Chromium for the module's tests, with a fresh profile."""
    if not Path(CHROMIUM).is_file():
        pytest.fail(f"no Chromium at {CHROMIUM}: {SETUP_HINT}")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.fail(f"playwright is not installed: {SETUP_HINT}")
    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=CHROMIUM,
            headless=True,
            args=list(CHROMIUM_FLAGS),
            viewport=VIEWPORT,
        )
        try:
            yield context
        finally:
            context.close()


@pytest.fixture
def ui(chromium: BrowserContext, prefect_server: Server) -> Iterator[PrefectUI]:
    """A new tab on the session's Prefect UI."""
    page = chromium.new_page()
    page.set_default_timeout(30_000)
    try:
        yield PrefectUI(page, prefect_server.api_url.removesuffix("/api"))
    finally:
        page.close()


@pytest.fixture(scope="session")
def screenshots(tmp_path_factory: pytest.TempPathFactory) -> Path:
    chosen = os.environ.get(SCREENSHOTS_ENV)
    return Path(chosen).resolve() if chosen else tmp_path_factory.mktemp("screenshots")


CLUSTER_DOCUMENT = {
    "block_type": "vec-inf-slurm-cluster",
    "name": "ui-local-cluster",
    "data": {
        "backend": "slurm",
        "options": {"time": "00:10:00", "vllm_args": "--sim-startup-delay=0.5"},
    },
}
SERVER_DOCUMENT = {
    "block_type": "vec-inf-model-server",
    "name": "ui-smollm2",
    "data": {
        "model_name": "SmolLM2-135M-Instruct",
        "options": {"engine": "sim"},
        "cluster": "ui-local-cluster",
    },
}


@pytest.fixture(scope="session")
def blocks(deployed: Deployed, tmp_path_factory: pytest.TempPathFactory) -> Blocks:
    """A cluster and a model-server block, saved the documented way (blocks/create_blocks.py)."""
    folder = tmp_path_factory.mktemp("block-documents")
    paths = []
    for document in (CLUSTER_DOCUMENT, SERVER_DOCUMENT):
        path = folder / f"{document['name']}.yaml"
        path.write_text(yaml.safe_dump(document))
        paths.append(str(path))
    done = subprocess.run(
        [sys.executable, "blocks/create_blocks.py", *paths],
        cwd=REPO,
        env=deployed.env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    names = {str(d["block_type"]): str(d["name"]) for d in (CLUSTER_DOCUMENT, SERVER_DOCUMENT)}
    ids = {
        slug: str(deployed.api.get(f"/block_types/slug/{slug}/block_documents/name/{name}")["id"])
        for slug, name in names.items()
    }
    return Blocks(names, ids)
