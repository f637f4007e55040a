"""The OpenAI Batch file format, in and out, as vLLM's ``run_batch`` and hosted batch APIs use it.

In: ``{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body": {...}}`` per line
(plus, for scoring, an ``expected`` or ``reference`` beside them). Out: ``{"id", "custom_id",
"response": {"status_code", "request_id", "body"} | null, "error": {"code", "message"} | null}``
per result, written from our result file (which stays the record of what was done, so a rerun
still resumes) into a new file that replaces the old one whole.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from vec_inf_flows.workload.request import (
    InputLineError,
    RequestKind,
    WorkRequest,
    assemble,
    explicit_id,
    reference_of,
)

URLS = {f"/v1{kind.path}": kind for kind in RequestKind}
_BATCH_KEYS = frozenset({"custom_id", "body"})


def is_batch_record(record: Mapping[str, Any]) -> bool:
    """A record in the Batch format: it has a ``custom_id`` and a ``body``."""
    return record.keys() >= _BATCH_KEYS


def batch_request(
    record: Mapping[str, Any], *, line: int, defaults: Mapping[str, Any]
) -> WorkRequest:
    """One Batch input line as a request; ``InputLineError`` for what cannot be sent."""
    request_id = explicit_id(record.get("custom_id"))
    method = str(record.get("method", "POST")).upper()
    if method != "POST":
        raise InputLineError(f"method {record.get('method')!r} is not supported: use POST")
    url = record.get("url")
    kind = URLS.get(str(url))
    if kind is None:
        supported = ", ".join(sorted(URLS))
        raise InputLineError(f"url {url!r} is not supported: use one of {supported}")
    body = record.get("body")
    if not isinstance(body, dict):
        raise InputLineError("'body' must be a JSON object")
    reference = reference_of(record)
    if reference is None:
        reference = reference_of(body)
        body = {key: value for key, value in body.items() if key not in ("expected", "reference")}
    return assemble(request_id, line, kind, body, defaults, reference)


def batch_line(record: Mapping[str, Any]) -> dict[str, Any]:
    """Our result record as a Batch output line. A request the server refused keeps the
    server's status and error body; one that got no answer (or never became a request) has a
    null response and an ``error``."""
    custom_id = str(record.get("id"))
    line_id = "batch_req_" + hashlib.sha256(custom_id.encode()).hexdigest()[:24]
    error = record.get("error") or {}
    if record.get("ok"):
        body = record.get("response") or {}
        response: dict[str, Any] | None = {
            "status_code": 200,
            "request_id": str(body.get("id") or line_id),
            "body": body,
        }
        return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}
    message = str(error.get("message") or "unknown error")
    if error.get("status"):
        response = {
            "status_code": int(error["status"]),
            "request_id": line_id,
            "body": {"error": {"message": message, "type": str(error.get("type"))}},
        }
        return {"id": line_id, "custom_id": custom_id, "response": response, "error": None}
    code = str(error.get("type") or "error")
    return {
        "id": line_id,
        "custom_id": custom_id,
        "response": None,
        "error": {"code": code, "message": message},
    }


def write_batch_output(results: str | Path, target: str | Path) -> int:
    """Write every record of ``results`` to ``target`` in the Batch output format; returns the
    number of lines. The file appears whole or not at all (written aside, then renamed)."""
    source, destination = Path(results), Path(target).expanduser()
    destination.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{destination.name}.", dir=destination.parent)
    count = 0
    try:
        with os.fdopen(descriptor, "w", encoding="utf-8") as out, source.open("rb") as records:
            for raw in records:
                try:
                    record = json.loads(raw)
                except ValueError:
                    continue  # a torn last line: the result store cuts it on the next run
                if isinstance(record, dict) and "id" in record:
                    out.write(json.dumps(batch_line(record), ensure_ascii=False) + "\n")
                    count += 1
            out.flush()
            os.fsync(out.fileno())
        os.chmod(temporary, 0o644)
        os.replace(temporary, destination)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return count
