"""``list`` and ``list MODEL``, answered from the precompiled catalog listing.

JSON keeps vec-inf's shapes: ``list`` is the sorted names, ``list MODEL`` every config key (unset
ones as null) except ``venv`` and ``log_dir``, plus this project's extra keys.
"""

from __future__ import annotations

import argparse
from types import SimpleNamespace
from typing import Any

from vec_inf_flows.cli import render

# Per-user settings rather than facts about the model (vec-inf leaves them out too).
HIDDEN_FIELDS = ("venv", "log_dir")


def list_command(args: argparse.Namespace, console: Any) -> int:
    from vec_inf_flows.catalog.listing_cache import load_listing

    listing = load_listing()
    if args.model_name:
        config = listing.configs.get(args.model_name)
        if config is None:  # the catalog's own error, with close names
            from vec_inf_flows.catalog.loader import load_catalog

            load_catalog().get(args.model_name)
            raise AssertionError("the listing and the catalog disagree")  # pragma: no cover
        shown = {"model_name": args.model_name}
        shown.update({k: v for k, v in config.items() if k not in (*HIDDEN_FIELDS, "model_name")})
        if args.json_mode:
            render.print_json(console, shown)
        else:
            rows = render.model_config_rows(args.model_name, shown)
            render.show(render.key_value_table("Model Config", rows))
        return 0
    if args.json_mode:
        render.print_json(console, [row["name"] for row in listing.rows])
    else:
        render.show(render.models_table([SimpleNamespace(**row) for row in listing.rows]))
    return 0
