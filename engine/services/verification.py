"""What anybody holding a paper may learn about it: the public facts of an issued document,
asked with the number, version and short hash its QR code carries (:mod:`engine.qr`).

This is the one read of the register made without an actor, so it answers narrowly:

- only when number, version and short hash all agree with the register; otherwise the one
  answer ``None``, whether the number was never issued, belongs to another version or the hash
  is wrong: the page cannot be used to learn which numbers exist (a 64-bit hash cannot be
  guessed), and a wrong hash gets no detail of the document behind the number;
- only public fields (:class:`PublicFacts`): the title of the kind of document, number,
  version, the issuing store's name, the issue date and the status in words. Of the case only
  its state is read (a quote expired or cancelled is no longer good); nothing of its data (no
  customer, no amounts), so nothing of it can leak.

It reads the whole store (every store of a dealer group): a paper names its number, not the
store the reader's phone should ask. The access rules of staff reads (:mod:`.guard`) are not
involved and not loosened: this service has no way to reach a case's data or a file.
"""
from __future__ import annotations

import hmac
from dataclasses import asdict, dataclass
from typing import Any, Mapping

from ..config import Config
from ..dates import cn_date
from ..qr import Payload, short_hash

# A workflow whose documents are signed by both parties records it by entering this state
# (contract.toml: issued → signed); the current version of its document then reads 已签署.
SIGNED_STATE = "signed"

# The archived versions of a document an uploaded file may be byte for byte: the issued PDF,
# the one the customer signed and brought back (engine/services/countersigning.py), and the
# copy stamped 作废 / 已收回 when it was withdrawn.
ARCHIVED = (("pdf_sha256", "出具时存档的原件"), ("signed_sha256", "客户签署后交回的存档件"),
            ("stamped_sha256", "收回或作废时加盖印章的存档件"))

STATUS_TEXT = {"valid": "有效", "signed": "已签署", "recalled": "已收回", "void": "已作废"}

# A case that ended this way leaves its current document issued but no longer good: a quote
# past its validity (the timer's expire) or withdrawn. Only the case's state is read.
ENDED = {"expired": "已失效（已过期）", "cancelled": "已失效（已取消）"}


@dataclass(frozen=True)
class PublicFacts:
    """A document as the public may see it; ``status``: valid, signed, superseded, recalled
    or void; ``status_text`` says it in Chinese (已被第 N 版替代 names the version that
    replaced it); ``valid``: the paper may be relied on (valid or signed)."""

    number: str
    title: str
    version: int
    store: str
    issued_on: str
    status: str
    status_text: str

    @property
    def valid(self) -> bool:
        return self.status in ("valid", "signed")

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "valid": self.valid}


@dataclass(frozen=True)
class Comparison:
    """A file compared with the archived versions of a document: ``same`` names which one it
    is byte for byte (its label), None if none."""

    sha256: str
    same: str | None

    def to_dict(self) -> dict[str, Any]:
        return {"sha256": self.sha256, "same": self.same, "matches": self.same is not None}


class Verification:
    """Public facts of the documents of a whole store (a group's every store)."""

    def __init__(self, config: Config, whole_store: Any) -> None:
        self.config = config.whole
        self.store = whole_store

    def facts(self, payload: Payload) -> PublicFacts | None:
        """The public facts of the document ``payload`` names, or None if number, version
        and short hash do not all agree with the register (the same None for each)."""
        found = self._entry(payload)
        return None if found is None else found[1]

    def compare(self, payload: Payload, digest: str) -> Comparison | None:
        """A file someone holds, by its sha256 ``digest``, against the archived versions of
        the document ``payload`` names; None, as for :meth:`facts`, if the payload does not
        agree. (A digest, not the bytes: the web page hashes an upload as it arrives and
        keeps nothing of it.)"""
        found = self._entry(payload)
        if found is None:
            return None
        doc = found[0]
        digest = digest.lower()
        same = next((label for key, label in ARCHIVED
                     if doc.get(key) and hmac.compare_digest(doc[key], digest)), None)
        return Comparison(digest, same)

    def _entry(self, payload: Payload) -> tuple[dict[str, Any], PublicFacts] | None:
        with self.store.snapshot() as tx:
            doc = tx.document(payload.number)
            if doc is None or not _agrees(doc, payload):
                return None
            newer = tx.document(doc["superseded_by"]) if doc.get("superseded_by") else None
            signed = (doc["status"] == "issued" and not doc.get("stamp")
                      and self._signed_since(tx, doc))
            case = tx.case(doc["case_id"])
            ended = case["state"] if case is not None and case["state"] in ENDED else None
        return doc, PublicFacts(
            number=doc["number"], title=doc["title"], version=int(doc["version"]),
            store=self._store_name(doc), issued_on=cn_date(doc["issued_at"][:10]),
            **public_status(doc, newer, signed, ended))

    @staticmethod
    def _signed_since(tx: Any, doc: Mapping[str, Any]) -> bool:
        return any(e.get("to") == SIGNED_STATE and e.get("at", "") >= doc["issued_at"]
                   for e in tx.case_log("audit", doc["case_id"]))

    def _store_name(self, doc: Mapping[str, Any]) -> str:
        if not self.config.stores:
            return self.config.dealer.name
        code = doc.get("store") or self.config.default_store
        site = self.config.stores.get(code)
        return site.name if site else self.config.dealer.name


def _agrees(doc: Mapping[str, Any], payload: Payload) -> bool:
    try:
        expected = short_hash(doc.get("docx_sha256") or "")
    except ValueError:
        return False
    return (hmac.compare_digest(expected, payload.h)
            and int(doc.get("version") or 0) == payload.version)


def public_status(doc: Mapping[str, Any], newer: Mapping[str, Any] | None, signed: bool,
                  ended: str | None = None) -> dict[str, str]:
    """Which status the public sees, the most telling first: void, replaced, recalled,
    lapsed (its case ``ended``: expired or cancelled), signed, valid."""
    if doc["status"] == "void" or doc.get("stamp") == "作废":
        status = "void"
    elif doc["status"] == "superseded":
        version = newer.get("version") if newer else None
        return {"status": "superseded",
                "status_text": f"已被第 {version} 版替代" if version else "已被新版本替代"}
    elif doc.get("stamp") == "已收回":
        status = "recalled"
    elif ended is not None:
        return {"status": "lapsed", "status_text": ENDED[ended]}
    else:
        status = "signed" if signed else "valid"
    return {"status": status, "status_text": STATUS_TEXT[status]}
