"""Strict conversion of parsed TOML into typed dataclasses, naming the key path of any problem.

Shared by config.toml and workflows/*.toml: an unknown key, a missing key or a value of the wrong
type raises the caller's error class with a message such as ``未知的配置项 users.zhang.role``.
"""
from __future__ import annotations

import copy
import dataclasses
import functools
import tomllib
import types
import typing
from pathlib import Path
from typing import Any

from .errors import DealerDocsError

_TYPE_NAMES = {str: "字符串", int: "整数", float: "数字", bool: "true/false"}


def build(tp: Any, value: Any, error: type[DealerDocsError], key: str = "",
          exclude: frozenset[str] | set[str] = frozenset()) -> Any:
    """Convert a TOML value to ``tp`` strictly, naming ``key`` in any error.

    ``exclude`` names dataclass fields that are never read from the file (at any depth).
    """
    where = key or "（顶层）"
    if dataclasses.is_dataclass(tp):
        if not isinstance(value, dict):
            raise error(f"{where} 应为表（table），收到 {value!r}", key=key)
        hints = _hints(tp)
        fields = {f.name: f for f in dataclasses.fields(tp) if f.name not in exclude}
        unknown = [k for k in value if k not in fields]
        if unknown:
            k = unknown[0]
            raise error(f"未知的配置项 {_join(key, k)}（该处可用：{', '.join(fields)}）",
                              key=_join(key, k))
        kwargs = {}
        for name, f in fields.items():
            if name in value:
                kwargs[name] = build(hints[name], value[name], error, _join(key, name), exclude)
            elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING:
                raise error(f"缺少配置项 {_join(key, name)}", key=_join(key, name))
        return tp(**kwargs)
    origin = typing.get_origin(tp)
    if origin is dict:
        _, vt = typing.get_args(tp)
        if not isinstance(value, dict):
            raise error(f"{where} 应为表（table），收到 {value!r}", key=key)
        return {k: build(vt, v, error, _join(key, k), exclude) for k, v in value.items()}
    if origin is list:
        (it,) = typing.get_args(tp)
        if not isinstance(value, list):
            raise error(f"{where} 应为列表，收到 {value!r}", key=key)
        return [build(it, v, error, f"{key}[{i}]", exclude) for i, v in enumerate(value)]
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        for arg in args[:-1]:  # the first type the value fits; the last one reports the error
            try:
                return build(arg, value, error, key, exclude)
            except DealerDocsError:
                continue
        return build(args[-1], value, error, key, exclude)
    if tp is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if tp in _TYPE_NAMES:
        if type(value) is not tp:
            raise error(f"{where} 应为{_TYPE_NAMES[tp]}，收到 {value!r}", key=key)
        return value
    raise error(f"{where}: 不支持的类型", key=key)  # pragma: no cover - programming error


@functools.cache
def _hints(tp: Any) -> dict[str, Any]:
    """``typing.get_type_hints`` once per dataclass (it evaluates every annotation each call)."""
    return typing.get_type_hints(tp)


def _join(key: str, name: str) -> str:
    return f"{key}.{name}" if key else name


_PARSED: dict[Path, tuple[tuple[int, int, int], dict[str, Any]]] = {}


def read_toml(path: Path) -> dict[str, Any]:
    """A TOML file parsed, once per version of the file in a process (config.toml's policy
    check and the workflows' loading both read the workflow files); the caller gets its own
    copy. Raises what reading and ``tomllib`` raise."""
    st = path.stat()
    key = (st.st_mtime_ns, st.st_size, st.st_ino)
    hit = _PARSED.get(path)
    if hit is None or hit[0] != key:
        hit = (key, tomllib.loads(path.read_text(encoding="utf-8")))
        _PARSED[path] = hit
    return copy.deepcopy(hit[1])
