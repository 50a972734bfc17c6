"""One exception hierarchy for everything a dealerdocs user or caller can act on.

Every error carries a message written for the person at the desk (Chinese where staff see it)
plus structured fields, so the CLI prints one line and an API caller can branch on the class.
"""
from __future__ import annotations

from typing import Any


class DealerDocsError(Exception):
    """Base of all errors the engine raises on purpose."""

    exit_code = 1

    def __init__(self, message: str, **details: Any) -> None:
        super().__init__(message)
        self.message = message
        self.details = {k: v for k, v in details.items() if v is not None}

    def __str__(self) -> str:  # pragma: no cover - trivial
        return self.message

    def to_dict(self) -> dict[str, Any]:
        return {"error": type(self).__name__, "message": self.message, **self.details}


class ConfigError(DealerDocsError):
    """config.toml is missing, malformed, or has an unknown key / wrong type (names the key path)."""

    exit_code = 2


class WorkflowDefinitionError(DealerDocsError):
    """A workflows/*.toml file is inconsistent (names the file and the key)."""

    exit_code = 2


class InputError(DealerDocsError):
    """User data is missing or invalid. `field` is the data key, `label` its Chinese label."""

    exit_code = 3

    def __init__(self, message: str, *, field: str | None = None, label: str | None = None,
                 problems: list["InputError"] | None = None, **details: Any) -> None:
        super().__init__(message, field=field, label=label, **details)
        self.field = field
        self.label = label
        self.problems = problems or [self]

    @classmethod
    def combine(cls, problems: list["InputError"]) -> "InputError":
        """One error that lists every problem found, so the user fixes them all in one go."""
        if len(problems) == 1:
            return problems[0]
        message = "；".join(p.message for p in problems)
        return cls(f"数据有 {len(problems)} 处问题：{message}", problems=problems,
                   fields=[p.field for p in problems])


class NotFoundError(DealerDocsError):
    """A case, document, user or workflow that was named does not exist."""

    exit_code = 4


class PermissionDenied(DealerDocsError):
    """The acting user lacks a role the transition requires (or is not a known user)."""

    exit_code = 5


class StateError(DealerDocsError):
    """The trigger is unknown, or not allowed from the case's current state, or a guard refused."""

    exit_code = 6


class TemplateError(DealerDocsError):
    """A .docx template is missing, unreadable or fails to render with the given data."""

    exit_code = 7


class ConversionError(DealerDocsError):
    """LibreOffice did not produce a PDF (timeout, crash, missing binary); carries stderr."""

    exit_code = 8


class StorageError(DealerDocsError):
    """The store or the outbox cannot be read or written (lock timeout, unreadable file)."""

    exit_code = 9


class IntegrityError(DealerDocsError):
    """An archived file no longer matches the hash recorded when it was issued."""

    exit_code = 10
