"""Files on disk: written whole or not at all, and readable by the service user only.

The store, the outbox and previews hold customers' personal data (resident ID and mobile
numbers on contracts and test-drive agreements), so every file dealerdocs creates is 0600 and
every folder 0700, whatever the umask of the shell or service that started it.
"""
from __future__ import annotations

import os
import time
import tempfile
from pathlib import Path

FILE_MODE = 0o600
DIR_MODE = 0o700


def private_umask() -> None:
    """Files and folders made by this process (LibreOffice's too) are the service user's only."""
    os.umask(0o077)


def make_dirs(path: Path) -> None:
    """``mkdir -p`` with every folder it makes for the service user only (``Path.mkdir``
    gives the missing parents the default mode, whatever ``mode`` says)."""
    path = Path(path)
    if path.is_dir():
        return
    missing = []
    while not path.exists():
        missing.append(path)
        if path.parent == path:
            break
        path = path.parent
    for folder in reversed(missing):
        try:
            folder.mkdir(mode=DIR_MODE)
        except FileExistsError:
            pass
        else:
            os.chmod(folder, DIR_MODE)  # the umask may have taken bits away; never added any


def fsync_dir(path: Path) -> None:
    dir_fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


def write_all(fd: int, payload: bytes) -> None:
    """``os.write`` until every byte is written (a write may be short on a full disk or
    after a signal); an error is raised, never a silently shortened file."""
    view = memoryview(payload)
    while view:
        written = os.write(fd, view)
        if written <= 0:  # pragma: no cover - os.write raises rather than return 0 on files
            raise OSError(28, "short write")
        view = view[written:]


def _private_temp(path: Path, payload: bytes, *, sync: bool) -> str:
    """A temp file beside ``path`` holding ``payload`` (0600, fsynced if ``sync``)."""
    make_dirs(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.fchmod(fd, FILE_MODE)
        try:
            write_all(fd, payload)
            if sync:
                os.fsync(fd)
        finally:
            os.close(fd)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return tmp


def atomic_write_bytes(path: Path, payload: bytes, *, sync: bool = True) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the new one, never a
    mix; the file is the service user's only (0600)."""
    path = Path(path)
    tmp = _private_temp(path, payload, sync=sync)
    try:
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    if sync:
        fsync_dir(path.parent)


def create_once(path: Path, payload: bytes) -> bool:
    """Create ``path`` holding ``payload`` unless it exists, so that it is never seen empty or
    half written and two processes racing end with one file: written to a temp file, fsynced,
    then hard-linked into place (a link never replaces). Returns whether this call made it
    (False: another process had, and theirs stays)."""
    path = Path(path)
    tmp = _private_temp(path, payload, sync=True)
    try:
        os.link(tmp, path)
        made = True
    except FileExistsError:
        made = False
    finally:
        Path(tmp).unlink(missing_ok=True)
    fsync_dir(path.parent)   # the new name survives a power cut
    return made


def make_private(root: Path) -> int:
    """Take group and other permissions away from everything under ``root`` (stores made
    before files were private); returns how many entries were changed."""
    changed = 0
    root = Path(root)
    if not root.exists():
        return 0
    for path in [root, *root.rglob("*")]:
        if path.is_symlink():
            continue
        mode = path.stat().st_mode & 0o777
        if mode & 0o077:
            os.chmod(path, mode & 0o700)
            changed += 1
    return changed


def remove_older_than(folder: Path, seconds: float, pattern: str = "*") -> int:
    """Remove the files matching ``pattern`` anywhere under ``folder`` whose last change is
    more than ``seconds`` ago (a cache of personal data kept a few days only); how many."""
    cutoff = time.time() - seconds
    removed = 0
    for path in Path(folder).rglob(pattern):
        try:
            if path.is_file() and path.stat().st_mtime < cutoff:
                path.unlink()
                removed += 1
        except FileNotFoundError:
            continue
    return removed
