"""Sign-in sessions (browsers) and API tokens, kept in the store so they can be ended.

What a client holds is ``<owner>.<id>.<secret>``: ``owner`` names the user's file in the store
(32 hex of a sha256 of the login), ``id`` is random and names the session in lists and on the
command line, ``secret`` is 32 random bytes only the client has; the store keeps its sha256,
so a copy of the store signs nobody in. Every check reads the store (the file is cached by its
mtime), so signing out, a new password or a revoked token ends access at once in every process
serving the store, not only in the one that was told.

A record: login, kind (``web`` or ``api``), the sha256 of the secret, created and expiry time
(the engine's clock, ISO), a label (the browser's user agent or the token's name) and a
fingerprint the caller may bind it to (the web app passes one of the password hash). Expired
records are dropped whenever that user's file is next written.
"""
from __future__ import annotations

import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from .errors import InputError, NotFoundError, StateError
from .store import Store

LIFETIME = {"web": timedelta(hours=12),   # a working day; then sign in again
            "api": timedelta(days=30)}
# Live records per user and kind: a 21st browser session ends the oldest one; API tokens are
# refused beyond 50 (an integration should reuse its token, and an admin revokes unused ones).
MAX_LIVE = {"web": 20, "api": 50}
LABEL_MAX = 120

_TOKEN = re.compile(r"([0-9a-f]{32})\.([0-9a-f]{16})\.([A-Za-z0-9_-]{43})")


@dataclass(frozen=True)
class Session:
    """One live session or token as the store has it (never its secret)."""

    id: str
    login: str
    kind: str
    created_at: str
    expires_at: str
    label: str
    fingerprint: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {"id": self.id, "login": self.login, "kind": self.kind,
                "created_at": self.created_at, "expires_at": self.expires_at,
                "label": self.label}


@dataclass(frozen=True)
class Opened:
    """A new session and the one string the client keeps (shown once, stored nowhere)."""

    session: Session
    token: str


def owner_of(login: str) -> str:
    """The name of ``login``'s file under ``<store>/sessions/``."""
    return hashlib.sha256(f"dealerdocs-sessions:{login}".encode("utf-8")).hexdigest()[:32]


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode("ascii")).hexdigest()


def _label(text: str) -> str:
    return re.sub(r"[\x00-\x1f\x7f]", "", text).strip()[:LABEL_MAX]


class Sessions:
    """Open, check and end sessions and tokens; the store is the only place they live."""

    def __init__(self, store: Store, clock: Callable[[], datetime]) -> None:
        self.store = store
        self.clock = clock

    # --- what the web app does on every sign-in and request --------------------------------

    def open(self, login: str, kind: str, *, label: str = "", fingerprint: str = "") -> Opened:
        """A new session (``web``) or token (``api``) for ``login``."""
        lifetime = LIFETIME.get(kind)
        if lifetime is None:
            raise InputError(f"会话类型 \"{kind}\" 无效（可选：web、api）", field="kind")
        now = self.clock()
        session_id, secret = secrets.token_hex(8), secrets.token_urlsafe(32)
        owner = owner_of(login)
        record = {"id": session_id, "login": login, "kind": kind,
                  "secret_sha256": _digest(secret), "created_at": now.isoformat(),
                  "expires_at": (now + lifetime).isoformat(), "label": _label(label),
                  "fingerprint": fingerprint}
        with self.store.transaction() as tx:
            live = self._prune(tx, owner, now)
            same = sorted((r for r in live.values() if r["kind"] == kind),
                          key=lambda r: r["created_at"])
            excess = len(same) + 1 - MAX_LIVE[kind]
            if excess > 0 and kind == "api":
                raise StateError(f"用户 {login} 已有 {len(same)} 个有效的 API 令牌（上限 "
                                 f"{MAX_LIVE[kind]}）；请复用已有令牌，或由管理员运行 dealerdocs "
                                 f"user tokens {login} --revoke ID 撤销不用的", user=login)
            for old in same[:max(0, excess)]:
                tx.set_session(owner, old["id"], None)
            tx.set_session(owner, session_id, record)
        return Opened(_session(record), f"{owner}.{session_id}.{secret}")

    def check(self, token: str | None, kind: str) -> Session | None:
        """The live session ``token`` stands for, if it is of ``kind``; else None."""
        found = _TOKEN.fullmatch(token or "")
        if found is None:
            return None
        owner, session_id, secret = found.groups()
        with self.store.snapshot() as tx:
            record = tx.sessions(owner).get(session_id)
        if record is None or record.get("kind") != kind or self._expired(record, self.clock()):
            return None
        if not hmac.compare_digest(str(record.get("secret_sha256")), _digest(secret)):
            return None
        return _session(record)

    def end(self, token: str | None) -> bool:
        """Sign out: end the session ``token`` stands for (False if it was not live)."""
        found = _TOKEN.fullmatch(token or "")
        if found is None:
            return False
        owner, session_id, secret = found.groups()
        with self.store.transaction() as tx:
            record = self._prune(tx, owner, self.clock()).get(session_id)
            if record is None or not hmac.compare_digest(str(record.get("secret_sha256")),
                                                         _digest(secret)):
                return False
            tx.set_session(owner, session_id, None)
        return True

    # --- what an administrator does --------------------------------------------------------

    def end_all(self, login: str) -> int:
        """End every session and token of ``login`` (a new password); how many were live."""
        owner = owner_of(login)
        with self.store.transaction() as tx:
            live = self._prune(tx, owner, self.clock())
            for session_id in live:
                tx.set_session(owner, session_id, None)
        return len(live)

    def list(self, login: str, kind: str | None = None) -> list[Session]:
        """The live sessions (or only those of ``kind``) of ``login``, oldest first."""
        now = self.clock()
        with self.store.snapshot() as tx:
            records = tx.sessions(owner_of(login))
        return [_session(r) for r in sorted(records.values(), key=lambda r: r["created_at"])
                if (kind is None or r.get("kind") == kind) and not self._expired(r, now)]

    def revoke(self, login: str, session_id: str, kind: str = "api") -> list[Session]:
        """End the token ``session_id`` of ``login`` (``all``: every one of ``kind``)."""
        owner = owner_of(login)
        with self.store.transaction() as tx:
            live = {k: r for k, r in self._prune(tx, owner, self.clock()).items()
                    if r.get("kind") == kind}
            if session_id != "all" and session_id not in live:
                known = "、".join(sorted(live)) or "（无）"
                raise NotFoundError(f"用户 {login} 没有编号为 \"{session_id}\" 的有效令牌"
                                    f"（现有：{known}）", user=login, token=session_id)
            ended = list(live) if session_id == "all" else [session_id]
            for key in ended:
                tx.set_session(owner, key, None)
        return [_session(live[k]) for k in ended]

    # --- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _expired(record: Mapping[str, Any], now: datetime) -> bool:
        try:
            return datetime.fromisoformat(str(record["expires_at"])) <= now
        except (KeyError, ValueError):
            return True  # a record without a readable expiry signs nobody in

    def _prune(self, tx: Any, owner: str, now: datetime) -> dict[str, dict[str, Any]]:
        """The live records of ``owner``; expired ones are removed in this unit of work."""
        live = {}
        for session_id, record in tx.sessions(owner).items():
            if self._expired(record, now):
                tx.set_session(owner, session_id, None)
            else:
                live[session_id] = record
        return live


def _session(record: Mapping[str, Any]) -> Session:
    return Session(id=record["id"], login=record["login"], kind=record["kind"],
                   created_at=record["created_at"], expires_at=record["expires_at"],
                   label=record.get("label", ""), fingerprint=record.get("fingerprint", ""))
