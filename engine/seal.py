"""Seals: one line, kept outside the store, that fixes the heads of the hash chains at a moment.

A hash chain shows an edited entry only as long as nobody re-hashes everything after it and
updates the head in ``meta.json``; whoever can write the store can do that. A seal line, printed
or appended daily to a file on another disk, records for each chain its length and head hash,
plus an HMAC-SHA256 made with a key kept outside the store. Later the chain must *extend* every
seal: the entry at the sealed seq still has the sealed hash (hashes recomputed from the entries'
content, not read from them) and the chain is at least that long. Without the key a rewritten
store cannot come with a matching new seal line.

Format (version 1; one line of plain text, fields separated by one space)::

    dealerdocs-seal v1 BJ1023 2026-12-04T18:00:00+08:00 audit=152:<sha256> register_log=97:<sha256> docs=40 hmac=<hmac-sha256>

The HMAC covers the line up to `` hmac=``. Pure functions: the caller reads the key, the seal
file and the chains and passes them in.
"""
from __future__ import annotations

import hashlib
import hmac as _hmac
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Iterable, Mapping, Sequence

from . import chain

MAGIC = "dealerdocs-seal"
VERSION = "v1"
CHAINS = ("audit", "register_log")
LABELS = {"audit": "审计记录", "register_log": "发放登记日志"}
MIN_KEY_BYTES = 32

_HEX64 = re.compile(r"[0-9a-f]{64}")
_COUNT = re.compile(r"0|[1-9][0-9]*")


class SealError(ValueError):
    """A line that is not a well-formed seal, or a key that cannot be used (message in Chinese)."""


@dataclass(frozen=True)
class Head:
    """A chain as sealed: its last seq (its length) and that entry's hash."""

    length: int
    hash: str


@dataclass(frozen=True)
class Seal:
    store: str                  # the dealer code of config.toml
    at: str                     # ISO time with offset, to the second
    chains: tuple[tuple[str, Head], ...]   # in CHAINS order
    docs: int                   # documents in the register
    hmac: str

    def head(self, name: str) -> Head:
        return dict(self.chains)[name]

    @property
    def message(self) -> str:
        """What the HMAC covers: the line without its last field."""
        return _message(self.store, self.at, self.chains, self.docs)

    @property
    def line(self) -> str:
        return f"{self.message} hmac={self.hmac}"

    def to_dict(self) -> dict[str, Any]:
        return {"store": self.store, "at": self.at, "docs": self.docs, "hmac": self.hmac,
                "chains": {name: {"length": h.length, "head": h.hash} for name, h in self.chains},
                "line": self.line}


def check_key(key: bytes) -> bytes:
    """``key`` if it is long enough to make an HMAC worth having."""
    if len(key) < MIN_KEY_BYTES:
        raise SealError(f"封存密钥只有 {len(key)} 字节，至少需要 {MIN_KEY_BYTES} 字节")
    return key


def make(store: str, at: datetime, heads: Mapping[str, Head], docs: int, key: bytes) -> Seal:
    """The seal of the chains' ``heads`` at ``at``, authenticated with ``key``."""
    if not store or any(c.isspace() for c in store):
        raise SealError(f"门店代码 \"{store}\" 不能为空或含空白（封存行以空格分隔字段）")
    if at.tzinfo is None:
        raise SealError("封存时间必须带时区")
    if docs < 0:
        raise SealError(f"文件份数不能为负数：{docs}")
    chains = tuple((name, heads[name]) for name in CHAINS)
    for name, h in chains:
        if not _valid_head(h):
            raise SealError(f"{LABELS[name]}的链尾 {h.length}:{h.hash} 不是有效的哈希")
    stamp = at.replace(microsecond=0).isoformat()
    return Seal(store, stamp, chains, docs,
                _mac(check_key(key), _message(store, stamp, chains, docs)))


def authentic(seal: Seal, key: bytes) -> bool:
    """Whether ``seal`` was made with ``key`` (constant-time comparison)."""
    return _hmac.compare_digest(_mac(check_key(key), seal.message), seal.hmac)


def parse(line: str) -> Seal:
    """A seal line back into a :class:`Seal`; anything but the exact format is refused."""
    line = line.rstrip("\r\n")
    fields = line.split(" ")
    if not fields or fields[0] != MAGIC:
        raise SealError(f"不是封存行（应以 {MAGIC} 开头）")
    if len(fields) < 2 or fields[1] != VERSION:
        raise SealError(f"不支持的封存格式 \"{fields[1] if len(fields) > 1 else ''}\"（本程序读 {VERSION}）")
    names = [*CHAINS, "docs", "hmac"]
    if len(fields) != 4 + len(names):
        raise SealError(f"封存行应有 {4 + len(names)} 个字段，这一行有 {len(fields)} 个")
    store, at = fields[2], fields[3]
    try:
        when = datetime.fromisoformat(at)
    except ValueError:
        raise SealError(f"封存时间 \"{at}\" 不是 ISO 时间") from None
    if when.tzinfo is None:
        raise SealError(f"封存时间 \"{at}\" 没有时区")
    if when.replace(microsecond=0).isoformat() != at:  # the HMAC covers one spelling
        raise SealError(f"封存时间 \"{at}\" 的写法不规范（应为 {when.replace(microsecond=0).isoformat()}）")
    values = {}
    for name, field in zip(names, fields[4:]):
        prefix = f"{name}="
        if not field.startswith(prefix):
            raise SealError(f"第 {names.index(name) + 5} 个字段应为 {name}=…，收到 \"{field}\"")
        values[name] = field[len(prefix):]
    chains = []
    for name in CHAINS:
        length, _, digest = values[name].partition(":")
        if not (_COUNT.fullmatch(length) and _valid_head(Head(int(length), digest))):
            raise SealError(f"{name}= 应为 条数:64 位十六进制哈希，收到 \"{values[name]}\"")
        chains.append((name, Head(int(length), digest)))
    if not _COUNT.fullmatch(values["docs"]):
        raise SealError(f"docs= 应为文件份数，收到 \"{values['docs']}\"")
    if not _HEX64.fullmatch(values["hmac"]):
        raise SealError(f"hmac= 应为 64 位十六进制，收到 \"{values['hmac']}\"")
    return Seal(store, at, tuple(chains), int(values["docs"]), values["hmac"])


@dataclass(frozen=True)
class Line:
    """One line of a seal file, read: ``status`` is "ok" (an authentic seal of this store),
    "other_store" (another store's line, not checked), "forged" (the HMAC does not match) or
    "malformed"; ``detail`` says why in Chinese."""

    number: int
    status: str
    seal: Seal | None = None
    detail: str = ""


def read_lines(text: str, store: str, key: bytes) -> list[Line]:
    """Every seal line of a seal file (blank lines and ``#`` comments skipped), parsed and
    authenticated. Another store's lines are only parsed: a shared file on a USB stick may
    hold several stores' seals, each checked with its own key."""
    check_key(key)
    out = []
    for number, raw in enumerate(text.splitlines(), start=1):
        if not raw.strip() or raw.lstrip().startswith("#"):
            continue
        try:
            seal = parse(raw)
        except SealError as err:
            out.append(Line(number, "malformed", None, str(err)))
            continue
        if seal.store != store:
            out.append(Line(number, "other_store", seal, f"门店 {seal.store} 的封存"))
        elif not authentic(seal, key):
            out.append(Line(number, "forged", seal,
                            "HMAC 与密钥算出的不符：这一行是伪造的或被改动过（或不是用这把密钥生成的）"))
        else:
            out.append(Line(number, "ok", seal))
    return out


def recomputed_hashes(entries: Iterable[Mapping[str, Any]]) -> list[str]:
    """The hash of entries 1, 2, … recomputed from their content and the hash before them (not
    read from their ``hash`` field); stops at the first gap in the sequence."""
    out, prev = [], chain.GENESIS
    for expected, entry in enumerate(sorted(entries, key=_seq), start=1):
        if entry.get("seq") != expected:
            break
        prev = chain.entry_hash(prev, entry)
        out.append(prev)
    return out


@dataclass(frozen=True)
class Break:
    """Where the store no longer extends a seal; for a chain, the changed or deleted entry
    lies in ``first``–``last`` (both 0 when the register lost documents)."""

    chain: str      # "audit", "register_log", or "docs"
    seal: Seal
    first: int
    last: int
    detail: str     # in Chinese, naming the chain, the seal's time and the entries


def compare(seals: Sequence[Seal], hashes: Mapping[str, Sequence[str]],
            docs: int | None = None) -> list[Break]:
    """Where the chains (``hashes`` from :func:`recomputed_hashes`) fail to extend the
    authentic ``seals`` of this store: at most one break per chain, for the earliest seal it
    breaks (every later seal breaks with it). The seals that still hold narrow down where the
    change is: a held seal at seq *a* proves entries 1–*a* unchanged. With ``docs`` (documents
    in the register now), a register smaller than at a seal is a break too."""
    found = []
    for name in CHAINS:
        current = hashes.get(name, [])
        label = LABELS[name]
        broken = [s for s in seals if not _holds(s.head(name), current)]
        if not broken:
            continue
        seal = min(broken, key=lambda s: (s.head(name).length, s.at))
        sealed = seal.head(name)
        if len(current) < sealed.length:
            first = len(current) + 1
            detail = (f"{label}现在只有 {len(current)} 条，{seal.at} 封存时已有 {sealed.length} 条："
                      f"{_span(first, sealed.length)}在封存后被删除")
        else:
            held = [s.head(name).length for s in seals if _holds(s.head(name), current)]
            since = max((n for n in held if n < sealed.length), default=0)
            first = since + 1
            where = (f"{_span(first, sealed.length)}在封存后被改写" if first == sealed.length
                     else f"{_span(first, sealed.length)}中有记录在封存后被改写")
            detail = (f"{label}与 {seal.at} 的封存不符：第 {sealed.length} 条（封存时的最后一条）"
                      f"的哈希应为 {sealed.hash[:16]}…，现为 {current[sealed.length - 1][:16]}…；"
                      f"{where}"
                      + (f"（{_span(1, since)}与更早的封存一致）" if since else ""))
        found.append(Break(name, seal, first, sealed.length, detail))
    if docs is not None:
        fewer = [s for s in seals if s.docs > docs]
        if fewer:
            seal = max(fewer, key=lambda s: s.docs)
            found.append(Break("docs", seal, 0, 0,
                               f"文件登记簿现有 {docs} 份文件，少于 {seal.at} 封存时的 {seal.docs} 份："
                               f"有文件的登记在封存后被删除"))
    return found


def _holds(sealed: Head, current: Sequence[str]) -> bool:
    if sealed.length == 0:   # an empty chain: every chain extends it
        return True
    return len(current) >= sealed.length and current[sealed.length - 1] == sealed.hash


def _span(first: int, last: int) -> str:
    return f"第 {first} 条" if first == last else f"第 {first}–{last} 条"


def _valid_head(h: Head) -> bool:
    """A length ≥ 0 and a sha256 in hex; an empty chain's head is the genesis hash."""
    return (h.length >= 0 and _HEX64.fullmatch(h.hash) is not None
            and (h.length > 0 or h.hash == chain.GENESIS))


def _message(store: str, at: str, chains: Iterable[tuple[str, Head]], docs: int) -> str:
    heads = " ".join(f"{name}={h.length}:{h.hash}" for name, h in chains)
    return f"{MAGIC} {VERSION} {store} {at} {heads} docs={docs}"


def _mac(key: bytes, message: str) -> str:
    return _hmac.new(key, message.encode("utf-8"), hashlib.sha256).hexdigest()


def _seq(entry: Mapping[str, Any]) -> int:
    seq = entry.get("seq")
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1
