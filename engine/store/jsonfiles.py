"""JSON files of the store: compact writing, strict reading (a damaged file is an error that
says so), and a bounded cache of parsed index files for long-running processes."""
from __future__ import annotations

import json
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

from ..errors import StorageError


def dumps(data: Any) -> bytes:
    return json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


def read_json(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except OSError as err:
        raise StorageError(f"无法读取数据库文件 {path}：{err}", path=str(path)) from err
    try:
        return json.loads(text) if text.strip() else None
    except json.JSONDecodeError as err:
        raise StorageError(f"数据库文件 {path} 已损坏（第 {err.lineno} 行：{err.msg}）；"
                           f"请从备份恢复", path=str(path)) from err


# Parsed index files, keyed by path and (mtime, size, inode): a long-running process (the web
# app) re-reads only the files that changed. Files are only ever replaced whole, so a new
# content always comes with a new inode. Bounded by the files' size on disk (least recently
# used go first), so scanning every document of a large store cannot fill the memory.
_INDEX_CACHE: "OrderedDict[Path, tuple[tuple[int, int, int], Any]]" = OrderedDict()
_INDEX_CACHE_BYTES = 32 * 1024 * 1024
_index_cache_size = 0
_index_cache_lock = threading.Lock()


def read_index_cached(path: Path) -> Any:
    global _index_cache_size
    try:
        st = path.stat()
    except FileNotFoundError:
        return None
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    with _index_cache_lock:
        hit = _INDEX_CACHE.get(path)
        if hit is not None and hit[0] == key:
            _INDEX_CACHE.move_to_end(path)
            return hit[1]
    data = read_json(path)
    with _index_cache_lock:
        old = _INDEX_CACHE.pop(path, None)
        if old is not None:
            _index_cache_size -= old[0][1]
        if st.st_size <= _INDEX_CACHE_BYTES // 4:
            _INDEX_CACHE[path] = (key, data)
            _index_cache_size += st.st_size
        while _index_cache_size > _INDEX_CACHE_BYTES:
            _, (dropped, _) = _INDEX_CACHE.popitem(last=False)
            _index_cache_size -= dropped[1]
    return data


def clear_index_cache() -> None:
    global _index_cache_size
    with _index_cache_lock:
        _INDEX_CACHE.clear()
        _index_cache_size = 0
