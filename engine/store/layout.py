"""The store's on-disk names and constants, shared by its layers."""
from __future__ import annotations

from typing import Any, Callable, Mapping

SCHEMA_VERSION = 5
LEGACY_FILE = "dealerdocs.json"   # schemas 1 and 2: the whole store in one tinydb file
META_FILE = "meta.json"
LOCK_FILE = "dealerdocs.lock"
LOGS = ("audit", "register_log")
NUMBER_BUCKETS = 1024
CASES_PER_FOLDER = 1000

# what the engine keeps in the indexes of a case (so the store stays ignorant of workflows)
Listing = Callable[[Mapping[str, Any]], dict[str, Any]]


def basic_listing(record: Mapping[str, Any]) -> dict[str, Any]:
    """The listing when no engine supplies one: the case's bookkeeping fields only."""
    return {}


def entry_case(record: Mapping[str, Any], case_of: Callable[[str], str | None]) -> str | None:
    """The case a log entry concerns (for that case's history): its own ``case_id``, or the
    case of the document ``number`` it names."""
    if record.get("case_id"):
        return record["case_id"]
    return case_of(record["number"]) if record.get("number") else None


def new_meta() -> dict[str, Any]:
    return {"_meta": {"1": {"schema_version": SCHEMA_VERSION}}}
