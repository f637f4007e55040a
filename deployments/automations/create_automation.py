"""Create (or replace) the automations of a YAML file, with your notification block filled in.

Usage: python deployments/automations/create_automation.py --notify BLOCK_TYPE/BLOCK_NAME
       [FILE ...]   (default: eval-regression.yaml beside this script)

Every ``send-notification`` action whose ``block_document_id`` is ``NOTIFICATION-BLOCK-ID`` gets
the id of the saved block ``--notify`` names (``slack-webhook/eval-alerts``, say). An automation
of the same name is replaced, so rerunning the command is safe. Talks to the Prefect server of
``PREFECT_API_URL`` (or the active profile).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml
from prefect.client.orchestration import get_client
from prefect.events.schemas.automations import AutomationCore

PLACEHOLDER = "NOTIFICATION-BLOCK-ID"
DEFAULT = Path(__file__).with_name("eval-regression.yaml")


def documents(path: Path) -> list[dict[str, Any]]:
    data = yaml.safe_load(path.read_text())
    if isinstance(data, dict) and "automations" in data:
        return list(data["automations"])
    return list(data) if isinstance(data, list) else [data]


def with_block(document: dict[str, Any], block_id: str) -> dict[str, Any]:
    actions = [
        {**action, "block_document_id": block_id}
        if action.get("block_document_id") == PLACEHOLDER
        else action
        for action in document.get("actions", [])
    ]
    return {**document, "actions": actions}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--notify", required=True, help="BLOCK_TYPE/BLOCK_NAME of a saved block")
    parser.add_argument("files", nargs="*", type=Path, default=[DEFAULT])
    args = parser.parse_args(argv)
    block_type, _, block_name = args.notify.partition("/")
    if not block_name:
        parser.error("--notify takes BLOCK_TYPE/BLOCK_NAME, e.g. slack-webhook/eval-alerts")
    with get_client(sync_client=True) as client:
        try:
            block = client.read_block_document_by_name(block_name, block_type)
        except Exception as error:
            print(f"error: no block {args.notify}: {error}", file=sys.stderr)
            return 2
        for path in args.files:
            for document in documents(path):
                automation = AutomationCore.model_validate(with_block(document, str(block.id)))
                for existing in client.read_automations_by_name(automation.name):
                    client.delete_automation(existing.id)
                created = client.create_automation(automation)
                print(f"Created automation {automation.name!r} with id {created}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
