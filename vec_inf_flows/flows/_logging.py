"""Library logs in the flow run: the ``vec_inf_flows`` logger's records go to the run's logs."""

from __future__ import annotations

import logging

from prefect.context import FlowRunContext, TaskRunContext
from prefect.logging.handlers import APILogHandler


class _InsideARun(logging.Filter):
    """Pass only records logged inside a flow or task run: the same process may use the client
    outside any run afterwards (a notebook, the CLI), and those records have no run to go to."""

    def filter(self, record: logging.LogRecord) -> bool:
        return FlowRunContext.get() is not None or TaskRunContext.get() is not None


def enable_library_logs(level: int = logging.INFO) -> None:
    """Send the ``vec_inf_flows`` logger to the run's logs (and set its level, which Prefect's
    PREFECT_LOGGING_EXTRA_LOGGERS does not do)."""
    library = logging.getLogger("vec_inf_flows")
    if library.level == logging.NOTSET or library.level > level:
        library.setLevel(level)
    if not any(isinstance(handler, APILogHandler) for handler in library.handlers):
        handler = APILogHandler()
        handler.addFilter(_InsideARun())
        library.addHandler(handler)
