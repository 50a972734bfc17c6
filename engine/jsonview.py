"""JSON-friendly views of context values, without the rendering stack (so commands that only
read the store start fast)."""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any, Mapping


def context_value(value: Any) -> Any:
    """JSON-friendly view of a context value (for ``show --json`` and debugging)."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (date, datetime)):
        return value.isoformat()
    if isinstance(value, Mapping):
        return {k: context_value(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [context_value(v) for v in value]
    return value
