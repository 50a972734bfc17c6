"""Which store a config names: the embedded folder (``[paths] store``) or a PostgreSQL
database (``store = "postgresql://…"``); both offer the same units of work."""
from __future__ import annotations

from typing import TYPE_CHECKING, Union

from .folder import Store
from .layout import Listing
from .migrations import Upgrade

if TYPE_CHECKING:
    from ..config import Config
    from .postgres import PostgresStore

AnyStore = Union[Store, "PostgresStore"]


def open_store(config: "Config", listing: Listing | None = None,
               upgrade: Upgrade | None = None) -> AnyStore:
    """The store of ``config`` (nothing is read or connected until its first unit of work)."""
    if config.store:
        from .postgres import PostgresStore

        return PostgresStore(config.store, lock_timeout=config.lock_timeout, listing=listing)
    return Store(config.store_dir, lock_timeout=config.lock_timeout, listing=listing,
                 upgrade=upgrade)
