"""Personal data: masking for display, keyed hashes for the audit trail, pseudonyms for purges.

Workflow fields say what they hold (``personal = "id" | "mobile" | "name" | "address" |
"text"``). Identity and mobile numbers are masked wherever a case is shown unless the user's
role may reveal them and asks (each reveal is an audit event). The audit trail and the register
log never keep personal values: they keep an HMAC-SHA256 under the store's personal-data key,
which tells a change and matches a value the store already knows, but cannot be read back
(the key stays in the store, 0600). Pure functions, but for :func:`load_key`.
"""
from __future__ import annotations

import hashlib
import hmac
import secrets
from pathlib import Path
from typing import Any

from .errors import ConfigError
from .files import create_once

PERSONAL_KINDS = ("id", "mobile", "name", "address", "text")
MASKED_KINDS = ("id", "mobile")
KEY_BYTES = 32
PSEUDONYM_PREFIX = "已删除-"


def mask(kind: str | None, value: Any) -> Any:
    """``110105********002X`` for an identity number (first 6, last 4), ``138****8000`` for a
    mobile; other kinds and empty values unchanged."""
    if kind not in MASKED_KINDS or not isinstance(value, str) or not value:
        return value
    if kind == "mobile":
        keep_head, keep_tail = 3, 4
    else:
        keep_head, keep_tail = 6, 4
    if len(value) <= keep_head + keep_tail:
        keep_head, keep_tail = min(1, len(value) - 1), min(1, len(value) - 1)
    hidden = len(value) - keep_head - keep_tail
    return value[:keep_head] + "*" * hidden + (value[-keep_tail:] if keep_tail else "")


def is_masked(kind: str | None, shown: Any, stored: Any) -> bool:
    """Whether ``shown`` is just the masked form of ``stored`` (a form or an API client sent
    back what it was shown: the value is unchanged)."""
    return (kind in MASKED_KINDS and isinstance(shown, str) and "*" in shown
            and shown == mask(kind, stored))


def period_text(days: int) -> str:
    """A retention period as a document states it: "1 年", "2 年", "180 天"."""
    return f"{days // 365} 年" if days % 365 == 0 else f"{days} 天"


def keyed_hash(key: bytes, value: Any) -> str | None:
    """HMAC-SHA256 of a personal value (its stored text form); None for an empty value."""
    if value is None or value == "" or value == []:
        return None
    text = value if isinstance(value, str) else repr(value)
    return hmac.new(key, text.encode("utf-8"), hashlib.sha256).hexdigest()


def pseudonym(key: bytes, value: Any) -> str:
    """What replaces a purged name in the register: the same person gets the same pseudonym."""
    digest = keyed_hash(key, value) or "0" * 64
    return f"{PSEUDONYM_PREFIX}{digest[:8]}"


def load_key(path: Path) -> bytes:
    """The store's personal-data key, made on first use: random bytes written to a temp file,
    fsynced and linked into place, so two processes starting together end with one key and a
    crash never leaves an empty one. A key shorter than 32 bytes is refused."""
    path = Path(path)
    try:
        key = path.read_bytes()
    except FileNotFoundError:
        key = None
    if key is None:
        create_once(path, secrets.token_bytes(KEY_BYTES))   # or another process's, made first
        key = path.read_bytes()
    if len(key) < KEY_BYTES:
        raise ConfigError(f"个人信息密钥 {path} 只有 {len(key)} 字节（应为 {KEY_BYTES} 字节），可能已损坏；"
                          f"请从备份恢复它（删除后审计记录中已有的个人信息摘要将无法再比对）",
                          path=str(path))
    return key


class PersonalKey:
    """The store's personal-data key, read (or made, :func:`load_key`) when first asked for:
    commands that never hash a personal value never touch the file."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._key: bytes | None = None

    def get(self) -> bytes:
        if self._key is None:
            self._key = load_key(self.path)
        return self._key
