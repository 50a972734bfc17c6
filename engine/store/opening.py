"""Which store a config names: the embedded folder (``[paths] store``) or a PostgreSQL
database (``store = "postgresql://…"``); both offer the same units of work."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Union

from .folder import Store
from .layout import Listing
from .migrations import Upgrade

if TYPE_CHECKING:
    from ..config import Config
    from .postgres import PostgresStore
    from .scoped import StoreView

AnyStore = Union[Store, "PostgresStore"]


def store_at(where: str | Path, *, base: Path = Path("."), listing: Listing | None = None,
             lock_timeout: float = 120.0, upgrade: Upgrade | None = None) -> AnyStore:
    """The store at ``where``: a postgresql:// URL, or a folder (relative to ``base``).
    Nothing is read or connected until its first unit of work."""
    from .postgres import PostgresStore, is_database_url

    if isinstance(where, str) and is_database_url(where):
        return PostgresStore(where, lock_timeout=lock_timeout, listing=listing)
    folder = Path(where).expanduser()
    return Store(folder if folder.is_absolute() else base / folder, lock_timeout=lock_timeout,
                 listing=listing, upgrade=upgrade)


def store_view(store: AnyStore, config: "Config") -> "AnyStore | StoreView":
    """What the engine of ``config``'s store reads and writes through: the store itself for
    one store, that store's view of the group's store when config.toml has ``[stores]``."""
    if not config.stores:
        return store
    from ..config import GROUP
    from .scoped import StoreView

    only = None if config.current_store in ("", GROUP) else config.current_store
    return StoreView(store, only, config.default_store)


def open_store(config: "Config", listing: Listing | None = None,
               upgrade: Upgrade | None = None) -> AnyStore:
    """The store of ``config``."""
    return store_at(config.store or config.store_dir, listing=listing,
                    lock_timeout=config.lock_timeout, upgrade=upgrade)
