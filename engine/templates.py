"""Templates in layers: a store's own edited copies first, then the product's defaults.

The product's Word templates (``templates/docx/`` in the repository, package data in a wheel)
are replaced whenever dealerdocs is upgraded. A store that wants its own wording edits a copy
in its own folder (``dealerdocs templates copy quote`` puts ``quote.docx`` there); a lookup
takes the store's copy when there is one, else the default, so an upgrade never touches the
store's edits. When a copy is made, the default's sha256 and its paragraphs' text are recorded
beside it, so ``dealerdocs templates diff`` and ``dealerdocs lint`` can later say that the
default has changed since, and what changed, for someone to carry into the copy.

On disk, in the store's templates folder (``[paths] templates``)::

    quote.docx                   the store's copy, edited in Word / WPS
    quote.docx.20261126-103000.bak   a copy replaced by ``copy --force`` (kept, never read)
    .copies.json                 {"schema_version": 1, "copies": {"quote.docx": {
                                    "default_sha256": "…", "copied_at": "2026-11-26T10:30:00+08:00",
                                    "paragraphs": [["段落 1", "商谈报价单"], …]}}}

A copy found without a record (put there by hand, or an old store whose templates folder
already held its own files) is used all the same; it is reported as "untracked", and compared
with the current default instead.
"""
from __future__ import annotations

import difflib
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from .errors import ConfigError, InputError, NotFoundError, TemplateError
from .files import atomic_write_bytes, make_dirs

log = logging.getLogger(__name__)

MANIFEST = ".copies.json"
SCHEMA_VERSION = 1
SUFFIX = ".docx"

#: How a template's state reads in Chinese (``dealerdocs templates list``).
STATE_LABELS = {
    "default": "默认模板",
    "current": "本店副本",
    "lagging": "本店副本，默认模板已更新",
    "untracked": "本店副本（未记录复制自哪一版默认模板）",
    "own_only": "本店自有模板（没有同名的默认模板）",
}


def _is_template(path: Path) -> bool:
    return path.is_file() and path.suffix == SUFFIX and not path.name.startswith(("~$", "."))


def _plain_name(name: str) -> bool:
    """A file name without folders (template names come from workflow files and the CLI)."""
    return bool(name) and Path(name).name == name and name not in (".", "..")


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@dataclass(frozen=True)
class TemplateLayers:
    """The folders a template name is looked up in, first match wins. ``own`` is None when the
    store has no folder of its own (its config names the defaults' folder)."""

    own: Path | None
    default: Path

    @property
    def folders(self) -> list[Path]:
        return [f for f in (self.own, self.default) if f is not None]

    def find(self, name: str) -> Path | None:
        """The store's copy of ``name``, else the default; None when neither has it."""
        if not _plain_name(name):
            return None
        return next((folder / name for folder in self.folders if (folder / name).is_file()), None)

    def path(self, name: str) -> Path:
        found = self.find(name)
        if found is None:
            raise TemplateError(f"找不到模板 {name}：{self.describe()}中都没有", template=name)
        return found

    def describe(self) -> str:
        """The folders in Chinese, for messages."""
        if self.own is None:
            return f"默认模板目录 {self.default} "
        return f"本店模板目录 {self.own} 与默认模板目录 {self.default} "

    def names(self) -> list[str]:
        """Every template name of either layer, sorted."""
        found = {p.name for folder in self.folders if folder.is_dir()
                 for p in folder.iterdir() if _is_template(p)}
        return sorted(found)


# --- the record of copies ---------------------------------------------------------------------

def _read_manifest(own: Path) -> dict[str, Any]:
    path = own / MANIFEST
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, ValueError) as err:
        raise TemplateError(f"无法读取副本记录 {path}：{err}；若已损坏，可删除它（本店副本照常使用，"
                            f"只是不再知道复制自哪一版默认模板）", path=str(path)) from err
    if not isinstance(raw, dict) or raw.get("schema_version") != SCHEMA_VERSION \
            or not isinstance(raw.get("copies"), dict):
        raise TemplateError(f"副本记录 {path} 的格式不对（应为 schema_version {SCHEMA_VERSION}）；"
                            f"若已损坏，可删除它", path=str(path))
    return raw["copies"]


def _write_manifest(own: Path, copies: dict[str, Any]) -> None:
    payload = json.dumps({"schema_version": SCHEMA_VERSION, "copies": copies},
                         ensure_ascii=False, indent=1, sort_keys=True)
    atomic_write_bytes(own / MANIFEST, (payload + "\n").encode("utf-8"))


def paragraphs(source: Path | bytes, what: str) -> list[tuple[str, str]]:
    """(place, text) of every paragraph with text, body then headers and footers."""
    from . import docxtext  # python-docx: only for copies and diffs, never for a lookup

    try:
        doc = docxtext.open_docx(source)
    except Exception as err:  # python-docx raises many kinds for a file that is not a .docx
        raise TemplateError(f"{what}不是有效的 Word（.docx）文档：{err}") from err
    return [(p.where, p.text) for p in docxtext.paragraphs(doc) if p.text.strip()]


# --- where each template stands ---------------------------------------------------------------

@dataclass(frozen=True)
class TemplateStatus:
    name: str
    state: str  # a key of STATE_LABELS
    path: Path  # the file documents are rendered from
    default: Path | None  # the default file of that name, if any
    sha256: str  # of ``path``
    default_sha256: str | None
    recorded_sha256: str | None  # the default's when the copy was made (None: not recorded)
    copied_at: str | None

    @property
    def label(self) -> str:
        return STATE_LABELS[self.state]

    @property
    def own(self) -> bool:
        return self.state != "default"

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "state": self.state, "label": self.label, "own": self.own,
                "path": str(self.path), "default": str(self.default) if self.default else None,
                "sha256": self.sha256, "default_sha256": self.default_sha256,
                "recorded_sha256": self.recorded_sha256, "copied_at": self.copied_at}


def status(layers: TemplateLayers, name: str, copies: dict[str, Any] | None = None
           ) -> TemplateStatus:
    """Whether the store uses its own copy of ``name`` and whether that lags the default."""
    path = layers.path(name)
    default = layers.default / name
    default = default if default.is_file() else None
    default_sha = sha256_of(default) if default else None
    if path == default:
        return TemplateStatus(name, "default", path, default, default_sha, default_sha, None, None)
    own_sha = sha256_of(path)
    if copies is None:
        copies = _read_manifest(layers.own) if layers.own else {}
    record = copies.get(name) or {}
    recorded, copied_at = record.get("default_sha256"), record.get("copied_at")
    if default is None:
        state = "own_only"
    elif recorded:
        state = "current" if recorded == default_sha else "lagging"
    else:
        state = "current" if own_sha == default_sha else "untracked"
    return TemplateStatus(name, state, path, default, own_sha, default_sha, recorded, copied_at)


def statuses(layers: TemplateLayers) -> list[TemplateStatus]:
    copies = _read_manifest(layers.own) if layers.own else {}
    return [status(layers, name, copies) for name in layers.names()]


def resolve_name(layers: TemplateLayers, name: str) -> str:
    """``quote`` or ``quote.docx`` → ``quote.docx``, a template of either layer; a NotFoundError
    with the closest names otherwise."""
    candidate = name if name.endswith(SUFFIX) else name + SUFFIX
    known = layers.names()
    if _plain_name(candidate) and candidate in known:
        return candidate
    close = difflib.get_close_matches(candidate, known, n=1)
    hint = f"是否想写 {close[0].removesuffix(SUFFIX)}？" if close else ""
    names = "、".join(n.removesuffix(SUFFIX) for n in known) or "（无）"
    raise NotFoundError(f"没有名为 \"{name}\" 的模板；{hint}可用：{names}", template=name)


# --- copying --------------------------------------------------------------------------------

def _own_folder(layers: TemplateLayers) -> Path:
    if layers.own is None:
        raise ConfigError(f"config.toml 的 [paths] templates 指向的就是默认模板目录 {layers.default}，"
                          f"本店还没有自己的模板目录；请改为 templates = \"templates\"（配置文件旁的 "
                          f"templates 文件夹）再复制", key="paths.templates")
    return layers.own


def copy(layers: TemplateLayers, name: str, *, now: datetime, force: bool = False
         ) -> dict[str, Any]:
    """Copy the default ``name`` into the store's folder to edit, and record which default it
    was. An existing copy is kept unless ``force``; then it is renamed to ``….bak``, not lost."""
    own = _own_folder(layers)
    name = resolve_name(layers, name)
    default = layers.default / name
    if not default.is_file():
        raise NotFoundError(f"{name} 是本店自有的模板，没有同名的默认模板可以复制", template=name)
    target = own / name
    backup = None
    if target.exists():
        if not force:
            raise InputError(f"本店已有 {name} 的副本（{target}）；要用默认模板重新复制请加 --force"
                             f"（原副本改名保留为 {name}.<时间>.bak）", field="force", template=name)
        backup = target.with_name(f"{name}.{now.strftime('%Y%m%d-%H%M%S')}.bak")
    data = default.read_bytes()
    make_dirs(own)
    copies = _read_manifest(own)
    if backup is not None:
        target.replace(backup)
    atomic_write_bytes(target, data)
    copies[name] = _record(data, default, now)
    _write_manifest(own, copies)
    log.info("copied template %s to %s", name, target)
    return {"name": name, "path": str(target), "default": str(default),
            "backup": str(backup) if backup else None,
            "default_sha256": copies[name]["default_sha256"]}


def accept(layers: TemplateLayers, name: str, *, now: datetime) -> dict[str, Any]:
    """Record that the store's copy now has the current default's changes (someone carried
    them over in Word): the current default becomes the one the copy is compared with."""
    own = _own_folder(layers)
    name = resolve_name(layers, name)
    if not (own / name).is_file():
        raise NotFoundError(f"本店没有 {name} 的副本（用的是默认模板），无需确认", template=name)
    default = layers.default / name
    if not default.is_file():
        raise NotFoundError(f"{name} 是本店自有的模板，没有同名的默认模板", template=name)
    copies = _read_manifest(own)
    copies[name] = _record(default.read_bytes(), default, now)
    _write_manifest(own, copies)
    return {"name": name, "path": str(own / name), "default_sha256": copies[name]["default_sha256"]}


def _record(data: bytes, default: Path, now: datetime) -> dict[str, Any]:
    return {"default_sha256": hashlib.sha256(data).hexdigest(), "copied_at": now.isoformat(),
            "paragraphs": [list(p) for p in paragraphs(data, f"默认模板 {default}")]}


# --- what changed ---------------------------------------------------------------------------

@dataclass(frozen=True)
class Change:
    where: str  # the place in the newer version (in the older one for a removed paragraph)
    old: str | None  # None: added
    new: str | None  # None: removed

    def to_dict(self) -> dict[str, Any]:
        return {"where": self.where, "old": self.old, "new": self.new}


def changes(old: list[tuple[str, str]], new: list[tuple[str, str]]) -> list[Change]:
    """Paragraph changes from ``old`` to ``new`` (each a list of (place, text)), in order."""
    matcher = difflib.SequenceMatcher(a=[t for _, t in old], b=[t for _, t in new],
                                      autojunk=False)
    out: list[Change] = []
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            continue
        pairs = min(i2 - i1, j2 - j1) if op == "replace" else 0
        out += [Change(new[j1 + k][0], old[i1 + k][1], new[j1 + k][1]) for k in range(pairs)]
        out += [Change(old[i][0], old[i][1], None) for i in range(i1 + pairs, i2)]
        out += [Change(new[j][0], None, new[j][1]) for j in range(j1 + pairs, j2)]
    return out


@dataclass(frozen=True)
class TemplateDiff:
    status: TemplateStatus
    product: list[Change]  # in the default since the copy was made (lagging copies)
    store: list[Change]  # the store's own edits: recorded default (or current one) → copy
    store_base: str  # "recorded" | "current default" | "" (no copy)

    def to_dict(self) -> dict[str, Any]:
        return {**self.status.to_dict(), "product_changes": [c.to_dict() for c in self.product],
                "store_changes": [c.to_dict() for c in self.store], "store_base": self.store_base}


def diff(layers: TemplateLayers, name: str) -> TemplateDiff:
    """What changed in the default since the store copied it, and the store's own edits."""
    name = resolve_name(layers, name)
    copies = _read_manifest(layers.own) if layers.own else {}
    st = status(layers, name, copies)
    if st.state in ("default", "own_only"):
        return TemplateDiff(st, [], [], "")
    own_paras = paragraphs(st.path, f"本店副本 {st.path}")
    current = paragraphs(st.default, f"默认模板 {st.default}")
    recorded = (copies.get(name) or {}).get("paragraphs")
    if st.recorded_sha256 and isinstance(recorded, list):
        base = [(str(w), str(t)) for w, t in recorded]
        return TemplateDiff(st, changes(base, current) if st.state == "lagging" else [],
                            changes(base, own_paras), "recorded")
    return TemplateDiff(st, [], changes(current, own_paras), "current default")


def lagging(layers: TemplateLayers) -> list[TemplateStatus]:
    """The store's copies whose default has changed since they were made."""
    return [s for s in statuses(layers) if s.state == "lagging"]


# --- in words -------------------------------------------------------------------------------

def format_changes(items: list[Change], indent: str = "    ") -> list[str]:
    lines = []
    for c in items:
        lines.append(f"{indent}{c.where}：")
        if c.old is not None:
            lines.append(f"{indent}  − {c.old}")
        if c.new is not None:
            lines.append(f"{indent}  + {c.new}")
    return lines


def format_diff(d: TemplateDiff, *, show_store: bool = True) -> list[str]:
    """A diff as lines for a person: the state, the default's changes, the store's edits."""
    st, short = d.status, d.status.name.removesuffix(SUFFIX)
    if st.state == "default":
        return [f"{st.name}：使用默认模板（本店没有副本），无需比较"]
    if st.state == "own_only":
        return [f"{st.name}：本店自有模板，没有同名的默认模板可比较"]
    when = f"（复制于 {st.copied_at[:16].replace('T', ' ')}）" if st.copied_at else ""
    if st.state == "lagging":
        lines = [f"{st.name}：默认模板在本店复制之后已更新{when}，本店副本 {st.path} 没有这些改动",
                 f"  默认模板的改动（复制时 → 现在，{len(d.product)} 处）："]
        lines += format_changes(d.product) or ["    （只有格式或版式改动，文字没有变化）"]
        lines.append(f"  请在 Word 中把这些改动照样改进本店副本，然后运行 dealerdocs templates accept {short}；"
                     f"或重新复制默认模板再做本店的修改：dealerdocs templates copy {short} --force")
    elif st.state == "untracked":
        lines = [f"{st.name}：本店副本 {st.path} 没有复制记录，不知道复制自哪一版默认模板；"
                 f"下面是它与现在的默认模板的差异。核对后可运行 dealerdocs templates accept {short}"]
    else:
        lines = [f"{st.name}：本店副本{when}，默认模板此后没有改动"]
    if show_store:
        what = "本店的修改（复制时的默认模板 → 本店副本）" if d.store_base == "recorded" \
            else "本店副本与现在的默认模板的差异（默认模板 → 本店副本）"
        lines.append(f"  {what}：")
        lines += format_changes(d.store) or ["    （文字没有差异）"]
    return lines
