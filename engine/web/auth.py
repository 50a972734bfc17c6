"""Signing in: password hashes, who may sign in now, the secret key, CSRF tokens.

- Passwords are argon2id hashes (argon2-cffi) kept in config.toml (``users.<login>.password_hash``);
  :class:`Accounts` re-reads them when the file changes, so ``dealerdocs user set-password``
  takes effect in a running server without a restart.
- Sessions and API tokens live in the store (:mod:`engine.sessions`): a cookie or bearer token
  is an id and a random secret, checked against the store on every request, so signing out,
  a new password or ``dealerdocs user tokens LOGIN --revoke ID`` ends it at once. A session is
  also bound (:func:`binding`) to the password hash and the secret key it was opened with.
- The secret key (at least 32 random bytes, ``<store>/web/secret.key``, mode 0600) is made
  once, atomically, by whichever process starts first; it keys the CSRF tokens of sessions,
  and a new key (the old file deleted) signs everyone out.
- Repeated failed sign-ins are slowed down by :mod:`engine.web.throttle`.
"""
from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import logging
import os
import re
import secrets
import threading
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from ..config import Config, User, load_config
from ..errors import ConfigError
from ..files import create_once

log = logging.getLogger(__name__)

SESSION_COOKIE = "dealerdocs_session"
SESSION_MAX_AGE = 12 * 3600          # the cookie's lifetime; the store's record decides
MIN_PASSWORD_LENGTH = 8
SECRET_BYTES = 32

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


def fingerprint(user: User) -> str:
    """Changes when the password does: sessions opened before then stop working."""
    return hashlib.sha256((user.password_hash or "").encode()).hexdigest()[:16]


def binding(user: User, secret: bytes) -> str:
    """What a session is bound to: the user's password hash and the app's secret key, so a
    new password or a new key ends the sessions opened before (without reading either)."""
    key_id = hmac.new(secret, b"dealerdocs-key-id", hashlib.sha256).hexdigest()[:16]
    return f"{fingerprint(user)}.{key_id}"


class Accounts:
    """The users who may sign in, with the password hashes config.toml holds *now*.

    The file is re-read (with :func:`engine.config.load_config`) when its mtime, size or inode
    changes; a file that does not load keeps the last good hashes (and is logged). Roles and
    names stay those the engine started with, so a page never shows rights the engine would
    not grant; a user removed from the file can no longer sign in or use a session.
    """

    def __init__(self, config: Config, path: Path | None) -> None:
        self._base = config.users
        self._path = Path(path) if path is not None else None
        self._hashes = {login: u.password_hash for login, u in config.users.items()}
        self._seen: tuple[int, int, int] | None = self._stamp()
        self._lock = threading.Lock()

    def _stamp(self) -> tuple[int, int, int] | None:
        if self._path is None:
            return None
        try:
            st = self._path.stat()
        except OSError:
            return None
        return st.st_mtime_ns, st.st_size, st.st_ino

    def _refresh(self) -> None:
        stamp = self._stamp()
        if stamp is None or stamp == self._seen:
            return
        with self._lock:
            if stamp == self._seen:
                return
            try:
                users = load_config(self._path).users  # type: ignore[arg-type]
            except ConfigError as err:
                log.warning("config.toml changed but does not load; keeping the last "
                            "password hashes: %s", err.message)
                self._seen = stamp
                return
            self._hashes = {login: u.password_hash for login, u in users.items()}
            self._seen = stamp
            log.info("password hashes re-read from %s", self._path)

    def user(self, login: str) -> User | None:
        """``login`` as the engine knows them, with today's password hash (None: no such user
        any more, or no password: cannot sign in)."""
        self._refresh()
        base = self._base.get(login)
        hashed = self._hashes.get(login)
        if base is None or not hashed:
            return None
        return base if base.password_hash == hashed else dataclasses.replace(base, password_hash=hashed)

    def authenticate(self, login: str, password: str) -> User | None:
        """The user whose login and password match, or None (same cost either way)."""
        user = self.user(login)
        ok = verify_password(user.password_hash if user else None, password)
        return user if ok and user is not None else None


# --- the secret key ----------------------------------------------------------------------------

def load_secret(store_dir: Path) -> bytes:
    """The app's secret key, ``<store>/web/secret.key`` (hex, mode 0600), made on first run.

    Made atomically: random bytes go to a temporary file in the same folder, are fsynced, and
    the file is hard-linked into place; if another process linked first, its key is read. So
    two servers starting at once end with one key, and a crash never leaves a short one. A key
    file that is empty, short or not hex is refused with what to do, never used.
    """
    path = Path(store_dir) / "web" / "secret.key"
    try:
        return _read_secret(path)
    except FileNotFoundError:
        pass
    # another process may make it first: theirs is complete (fsynced) and is the one used
    create_once(path, secrets.token_bytes(SECRET_BYTES).hex().encode("ascii"))
    return _read_secret(path)


def _read_secret(path: Path) -> bytes:
    what_to_do = (f"请删除 {path} 后重启 dealerdocs serve，会生成新的密钥"
                  f"（所有人需重新登录）")
    try:
        key = bytes.fromhex(path.read_text(encoding="ascii").strip())
    except (ValueError, UnicodeDecodeError) as err:
        raise ConfigError(f"密钥文件 {path} 已损坏（不是十六进制文本）；{what_to_do}",
                          path=str(path)) from err
    if len(key) < SECRET_BYTES:
        raise ConfigError(f"密钥文件 {path} 只有 {len(key)} 字节，至少需要 {SECRET_BYTES} 字节"
                          f"（可能是两个服务同时启动或写入时断电留下的）；{what_to_do}",
                          path=str(path))
    return key


# --- CSRF --------------------------------------------------------------------------------------

def csrf_token(secret: bytes, session_token: str) -> str:
    """The CSRF token of a session: keyed with the app's secret, so it is known only to the
    browser holding the session cookie (and stored nowhere)."""
    mac = hmac.new(secret, b"dealerdocs-csrf:" + session_token.encode("ascii", "replace"),
                   hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac[:24]).decode("ascii")


def csrf_ok(expected: str, sent: object) -> bool:
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(
        expected.encode(), sent.encode())


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
