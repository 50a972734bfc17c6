"""Signing in: password hashes, the secret key, signed session cookies, CSRF tokens, API
tokens and the rate limit on sign-in attempts.

- Passwords are argon2id hashes (argon2-cffi) kept in config.toml (``users.<login>.password_hash``).
- The secret key is 32 random bytes made on first run at ``<store>/web/secret.key`` (mode 0600);
  it signs session cookies and API tokens (itsdangerous) and never leaves the store folder.
- A session cookie carries the login, a per-session CSRF token and a fingerprint of the
  password hash, so a changed password ends old sessions and tokens.
- Failed sign-ins are counted per address and per login in a sliding window.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import re
import secrets
import threading
import time
from collections import deque
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from itsdangerous import BadSignature, URLSafeTimedSerializer

from ..config import Config, User
from ..errors import ConfigError

SESSION_COOKIE = "dealerdocs_session"
SESSION_MAX_AGE = 12 * 3600          # a working day; then sign in again
TOKEN_MAX_AGE = 30 * 24 * 3600       # API tokens
MIN_PASSWORD_LENGTH = 8

_hasher = PasswordHasher()
# Verifying against this keeps the time of a sign-in with an unknown login like a known one.
_DUMMY_HASH = _hasher.hash("dealerdocs-no-such-user")


def hash_password(password: str) -> str:
    if len(password) < MIN_PASSWORD_LENGTH:
        raise ConfigError(f"密码至少 {MIN_PASSWORD_LENGTH} 个字符")
    return _hasher.hash(password)


def verify_password(stored: str | None, password: str) -> bool:
    try:
        return _hasher.verify(stored or _DUMMY_HASH, password) and stored is not None
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def authenticate(config: Config, login: str, password: str) -> User | None:
    """The user whose login and password match, or None (same cost either way)."""
    user = config.users.get(login)
    ok = verify_password(user.password_hash if user else None, password)
    return user if ok and user is not None else None


def fingerprint(user: User) -> str:
    """Changes when the password does: sessions and tokens made before then stop working."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def load_secret(store_dir: Path) -> bytes:
    """The app's secret key, made on first run (``<store>/web/secret.key``, mode 0600)."""
    path = Path(store_dir) / "web" / "secret.key"
    try:
        return bytes.fromhex(path.read_text(encoding="ascii").strip())
    except FileNotFoundError:
        pass
    except ValueError as err:
        raise ConfigError(f"密钥文件 {path} 已损坏；删除它后重启会生成新的密钥（所有人需重新登录）") from err
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:  # another process made it first
        return load_secret(store_dir)
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex())
    return key


class Signer:
    """Session cookies and API tokens signed with the secret key."""

    def __init__(self, secret: bytes) -> None:
        self._sessions = URLSafeTimedSerializer(secret, salt="dealerdocs-session")
        self._tokens = URLSafeTimedSerializer(secret, salt="dealerdocs-api-token")

    def session(self, user: User) -> tuple[str, dict[str, Any]]:
        payload = {"u": user.login, "c": secrets.token_urlsafe(24), "p": fingerprint(user)}
        return self._sessions.dumps(payload), payload

    def read_session(self, cookie: str | None, config: Config) -> tuple[User, str] | None:
        """The signed-in user and the session's CSRF token, or None."""
        if not cookie:
            return None
        try:
            payload = self._sessions.loads(cookie, max_age=SESSION_MAX_AGE)
        except BadSignature:
            return None
        return _check(payload, config, with_csrf=True)

    def token(self, user: User) -> str:
        return self._tokens.dumps({"u": user.login, "p": fingerprint(user)})

    def read_token(self, token: str, config: Config) -> User | None:
        try:
            payload = self._tokens.loads(token, max_age=TOKEN_MAX_AGE)
        except BadSignature:
            return None
        found = _check(payload, config, with_csrf=False)
        return found[0] if found else None


def _check(payload: Any, config: Config, with_csrf: bool) -> tuple[User, str] | None:
    if not isinstance(payload, dict):
        return None
    user = config.users.get(str(payload.get("u")))
    if user is None or user.password_hash is None:
        return None
    if not hmac.compare_digest(str(payload.get("p")), fingerprint(user)):
        return None
    csrf = payload.get("c") if with_csrf else ""
    if with_csrf and not isinstance(csrf, str):
        return None
    return user, csrf


def csrf_ok(expected: str, sent: str | None) -> bool:
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(expected, sent)


class RateLimiter:
    """At most ``limit`` failed attempts per key within ``window`` seconds (in memory)."""

    def __init__(self, limit: int = 5, window: float = 300.0, clock=time.monotonic) -> None:
        self.limit, self.window, self.clock = limit, window, clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, key: str, now: float) -> deque[float]:
        q = self._failures.setdefault(key, deque())
        while q and q[0] <= now - self.window:
            q.popleft()
        return q

    def wait(self, *keys: str) -> int:
        """Seconds until another attempt is allowed for all ``keys`` (0 = now)."""
        now = self.clock()
        with self._lock:
            waits = [q[0] + self.window - now for q in (self._recent(k, now) for k in keys)
                     if len(q) >= self.limit]
        return int(max(waits) + 1) if waits else 0

    def failed(self, *keys: str) -> None:
        now = self.clock()
        with self._lock:
            for key in keys:
                self._recent(key, now).append(now)

    def succeeded(self, *keys: str) -> None:
        with self._lock:
            for key in keys:
                self._failures.pop(key, None)


def set_password(config_path: Path, login: str, password_hash: str) -> None:
    """Write ``password_hash`` into ``[users.<login>]`` of config.toml, leaving the rest of the
    file (comments, order) as it is; then check the file still loads."""
    from ..config import load_config

    path = Path(config_path)
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines(keepends=True)
    header = re.compile(rf"^\s*\[users\.{re.escape(login)}\]\s*(#.*)?$")
    start = next((i for i, line in enumerate(lines) if header.match(line.rstrip("\n"))), None)
    if start is None:
        known = "、".join(sorted(load_config(path).users)) or "（无）"
        raise ConfigError(f"config.toml 中没有用户 \"{login}\"（有：{known}）")
    end = next((i for i in range(start + 1, len(lines)) if lines[i].lstrip().startswith("[")),
               len(lines))
    entry = f'password_hash = "{password_hash}"\n'
    existing = [i for i in range(start + 1, end)
                if re.match(r"^\s*password_hash\s*=", lines[i])]
    if existing:
        lines[existing[0]] = entry
    else:
        last = max((i for i in range(start + 1, end) if lines[i].strip()), default=start)
        if not lines[last].endswith("\n"):
            lines[last] += "\n"
        lines.insert(last + 1, entry)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("".join(lines), encoding="utf-8")
    try:
        config = load_config(tmp)
        if config.users[login].password_hash != password_hash:
            raise ConfigError(f"未能写入 users.{login}.password_hash")
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
