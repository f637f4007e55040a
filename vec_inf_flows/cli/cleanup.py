"""``cleanup``: delete old log folders, with vec-inf's filters and messages.

Not to be confused with ``run cleanup``, the Prefect flow that cancels abandoned servers.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from vec_inf_flows.cli import render


def cleanup_command(args: argparse.Namespace, console: Any) -> int:
    from vec_inf_flows.cli.clients import client_for
    from vec_inf_flows.logcleanup import (
        CleanupFilter,
        clean_logs,
        default_log_root,
        live_job_ids,
    )

    client = client_for(args)
    root = Path(args.log_dir).expanduser() if args.log_dir else default_log_root()
    selection = CleanupFilter(args.model_family, args.model_name, args.job_id, args.before_job_id)
    live = live_job_ids(client.backend.list_jobs())  # one squeue: whose folders must stay
    result = clean_logs(root, selection, live, dry_run=args.dry_run, index_root=client.index_root)
    if args.json_mode:
        render.print_json(
            console,
            {
                "dry_run": args.dry_run,
                "deleted" if not args.dry_run else "would_delete": [str(p) for p in result.matched],
                "kept_running": [str(path) for path in result.kept],
            },
        )
        return 0
    matched = result.matched
    if not matched:
        print(
            "Dry run: no matching log directories found."
            if args.dry_run
            else "No matching log directories were deleted."
        )
    elif args.dry_run:
        print(f"Dry run: {len(matched)} directories would be deleted:")
        for path in matched:
            print(f"  - {path}")
    else:
        print(f"Deleted {len(matched)} log directory(ies).")
    if result.kept:
        print(f"Kept {len(result.kept)} folder(s) of jobs still running:")
        for path in result.kept:
            print(f"  - {path}")
    return 0
