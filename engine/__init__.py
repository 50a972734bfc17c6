"""dealerdocs: the document and workflow engine of a Chinese car dealership.

The front door: :class:`Engine` (cases, transitions, documents, register), :func:`load_config`,
and the error hierarchy rooted at :class:`DealerDocsError`.
"""
from .config import Config, load_config
from .engine import Engine, FireResult, IssuedDocument
from .errors import (ConfigError, ConversionError, DealerDocsError, InputError, IntegrityError,
                     NotFoundError, PermissionDenied, StateError, StorageError, TemplateError,
                     WorkflowDefinitionError)

__all__ = [
    "Config", "load_config", "Engine", "FireResult", "IssuedDocument",
    "DealerDocsError", "ConfigError", "ConversionError", "InputError", "IntegrityError",
    "NotFoundError", "PermissionDenied", "StateError", "StorageError", "TemplateError",
    "WorkflowDefinitionError",
]
__version__ = "0.1.0"
