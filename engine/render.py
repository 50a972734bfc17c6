"""Rendering: a .docx template plus a context in, .docx bytes out. Knows nothing of cases.

One shared jinja2 environment with autoescape on (a value with ``& < >`` cannot break the XML)
and StrictUndefined (a misspelt variable fails instead of printing nothing). Template bytes are
read once and cached by path, size and mtime; every render builds a fresh ``DocxTemplate`` from
those bytes because a DocxTemplate holds per-render state (pitfalls B1). Values are data, never
template source: a customer called ``{{ 7*7 }}`` is printed as typed.
"""
from __future__ import annotations

import hashlib
import io
import threading
import zipfile
from collections import OrderedDict
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any, Mapping

import jinja2
from docx.opc.exceptions import PackageNotFoundError
from docxtpl import DocxTemplate
from lxml import etree

from . import dates, money
from .bookmarks import mark_last
from .errors import TemplateError
from .text import clean_text


def _none_or(fn):
    def filt(value: Any) -> str:
        return "—" if value is None else fn(value)
    filt.__name__ = fn.__name__
    return filt


def _money(value: Any) -> str:
    return money.format_money(money.parse_money(value) if not isinstance(value, Decimal)
                              else value)


def _rmb_upper(value: Any) -> str:
    return money.rmb_upper(value if isinstance(value, Decimal) else money.parse_money(value))


FILTERS = {
    "money": _none_or(_money),
    "rmb_upper": _none_or(_rmb_upper),
    "cn_date": _none_or(dates.cn_date),
    "cn_datetime": _none_or(dates.cn_datetime),
}


class _CompiledCache(jinja2.Environment):
    """docxtpl compiles every XML part with ``from_string`` on every render, and compiling is
    most of a render's time. A template's parts give the same source each time, so the
    compiled templates are kept (by source; the last 64), which makes a repeated render about
    twice as fast. Rendering a compiled jinja2 template is thread-safe."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._compiled: OrderedDict[str, jinja2.Template] = OrderedDict()
        self._compiled_lock = threading.Lock()

    def from_string(self, source, globals=None, template_class=None):  # type: ignore[override]
        if globals is not None or template_class is not None or not isinstance(source, str):
            return super().from_string(source, globals, template_class)
        with self._compiled_lock:
            found = self._compiled.get(source)
            if found is not None:
                self._compiled.move_to_end(source)
                return found
        compiled = super().from_string(source)
        with self._compiled_lock:
            self._compiled[source] = compiled
            while len(self._compiled) > 64:
                self._compiled.popitem(last=False)
        return compiled


def make_environment() -> jinja2.Environment:
    env = _CompiledCache(autoescape=True, undefined=jinja2.StrictUndefined,
                         keep_trailing_newline=True)
    env.filters.update(FILTERS)
    return env


def sanitize(value: Any) -> Any:
    """Strings cleaned of XML-illegal characters, recursively; other values untouched."""
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, Mapping):
        return {k: sanitize(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sanitize(v) for v in value]
    return value


@dataclass(frozen=True)
class LoadedTemplate:
    path: Path
    data: bytes
    sha256: str


class Renderer:
    """Turns a template file and a context into .docx bytes."""

    def __init__(self) -> None:
        self.env = make_environment()
        self._cache: dict[Path, tuple[tuple[int, int], LoadedTemplate]] = {}

    def load(self, path: Path) -> LoadedTemplate:
        path = Path(path)
        try:
            st = path.stat()
            stamp = (st.st_size, st.st_mtime_ns)
            cached = self._cache.get(path)
            if cached and cached[0] == stamp:
                return cached[1]
            data = path.read_bytes()
        except OSError as err:
            raise TemplateError(f"无法读取模板 {path}：{err}", template=str(path)) from err
        loaded = LoadedTemplate(path, data, hashlib.sha256(data).hexdigest())
        self._cache[path] = (stamp, loaded)
        return loaded

    def render(self, template: LoadedTemplate, context: Mapping[str, Any],
               properties: Mapping[str, str] | None = None,
               bookmarks: Mapping[str, str] | None = None) -> bytes:
        """Render ``template`` with ``context``; ``properties`` go into the core properties;
        ``bookmarks`` (name → text) are put where each text last occurs
        (:func:`engine.bookmarks.mark_last`: the signature labels, so the PDF says where they
        are printed)."""
        name = template.path.name
        unknown = [k for k in (properties or {}) if k not in _CORE_PROPERTIES]
        if unknown:
            raise ValueError(f"unknown core properties {unknown}")  # a caller's bug, not a user's
        try:
            doc = _StrictDocxTemplate(io.BytesIO(template.data))
            doc.init_docx()
        except (PackageNotFoundError, zipfile.BadZipFile, KeyError, ValueError,
                etree.XMLSyntaxError) as err:
            raise TemplateError(f"模板 {name} 不是有效的 Word 文档：{err}", template=name) from err
        try:
            doc.render(sanitize(dict(context)), jinja_env=self.env)
            for key, value in (properties or {}).items():
                setattr(doc.docx.core_properties, key, clean_text(value))
            if bookmarks:
                mark_last(doc.docx.element.body, bookmarks)
            out = io.BytesIO()
            doc.save(out)
        except jinja2.UndefinedError as err:
            raise TemplateError(f"模板 {name} 使用了未提供的变量：{err.message}",
                                template=name) from err
        except jinja2.TemplateSyntaxError as err:
            where = " / ".join(s.strip() for s in getattr(err, "docx_context", []) if s.strip())
            raise TemplateError(f"模板 {name} 的标签写法有误：{err.message}"
                                f"{'（附近文字：' + where[:120] + '）' if where else ''}",
                                template=name) from err
        except jinja2.TemplateError as err:
            raise TemplateError(f"模板 {name} 渲染失败：{err}", template=name) from err
        except etree.XMLSyntaxError as err:
            raise TemplateError(f"模板 {name} 渲染后不是有效的 XML（是否用了 |safe？）：{err}",
                                template=name) from err
        except (ValueError, TypeError, ArithmeticError) as err:
            # raised inside a filter or an expression of the template, e.g. money of "abc"
            raise TemplateError(f"模板 {name} 中的表达式或过滤器出错：{err}", template=name) from err
        data = out.getvalue()
        check_wordml(data, name)
        return data


_CORE_PROPERTIES = frozenset({"title", "subject", "author", "keywords", "identifier", "comments",
                              "category", "language", "content_status"})


class _StrictDocxTemplate(DocxTemplate):
    """DocxTemplate whose rendered body must be well-formed before docxtpl's ``fix_tables``
    re-parses it with ``recover=True`` (which would silently drop broken content)."""

    # patch_xml (docxtpl's clean-up of Word's run splits inside tags) is pure and costs as
    # much as compiling; a template's parts patch the same way every time
    _patched: "OrderedDict[str, str]" = OrderedDict()
    _patched_lock = threading.Lock()

    def patch_xml(self, src_xml):
        with self._patched_lock:
            found = self._patched.get(src_xml)
        if found is None:
            found = super().patch_xml(src_xml)
            with self._patched_lock:
                self._patched[src_xml] = found
                while len(self._patched) > 64:
                    self._patched.popitem(last=False)
        return found

    def fix_tables(self, xml):
        etree.fromstring(xml.encode("utf-8") if isinstance(xml, str) else xml,
                         etree.XMLParser(recover=False, resolve_entities=False, huge_tree=True))
        return super().fix_tables(xml)


def check_wordml(data: bytes, name: str) -> None:
    """Parse every XML part strictly: docxtpl repairs broken XML silently (``recover=True``)."""
    parser = etree.XMLParser(recover=False, resolve_entities=False)
    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        for part in zf.namelist():
            if part.endswith(".xml") or part.endswith(".rels"):
                try:
                    etree.fromstring(zf.read(part), parser)
                except etree.XMLSyntaxError as err:
                    raise TemplateError(f"模板 {name} 渲染结果的 {part} 不是有效 XML：{err}",
                                        template=name, part=part) from err
