"""The customer-signed PDF of an issued document comes back (a step with ``takes_signed``,
e.g. the contract's ``sign``): checked against the issued revision (:func:`engine.signing.
check_returned`), archived beside the original as its signed version (``….signed.pdf``) and
recorded on the register entry (``signed_pdf``, ``signed_sha256``, the signer's name) with a
"signed" event in the register log.

A store that signs the document kind (``[documents.<kind>] sign = true``) needs the file: the
signature on paper alone cannot be checked. A store that does not sign it may record the
signing without a file, as before; a file given is checked all the same (without the store's
signature).
"""
from __future__ import annotations

from typing import Any, Mapping

from ..archive import Archive, Attachments, sha256
from ..config import Config, User
from ..errors import InputError, StateError
from ..store import Tx
from ..workflow import TakesSigned, Workflow
from .trail import Trail
from .units import Work


class Countersigning:
    """Takes back signed versions of a store's issued documents."""

    def __init__(self, config: Config, archive: Archive, attachments: Attachments,
                 trail: Trail) -> None:
        self.config = config
        self.archive = archive
        self.attachments = attachments
        self.trail = trail

    def take(self, tx: Tx, work: Work, wf: Workflow, takes: TakesSigned,
             record: Mapping[str, Any], given: Mapping[str, Any], user: User
             ) -> dict[str, Any] | None:
        """The signed version of case ``record``'s issued ``takes.document``, from the file
        attached in this step (``given``, the step's own data), checked and registered; None
        when no file came and the store does not sign that kind. Refused with the reason."""
        spec = wf.documents[takes.document]
        label = f"{wf.fields[takes.file].label}（{takes.file}）"
        upload = (given.get(takes.file) or [])[-1:]
        if not upload:
            if self.config.document_kind(spec.key).sign:
                raise InputError(f"本店对{spec.title}签章：请上传客户签署后的 PDF，{label}",
                                 field=takes.file)
            return None
        issued = [d for d in tx.case_documents(record["id"])
                  if d["kind"] == spec.key and d["status"] == "issued"]
        if not issued:
            raise StateError(f"{record['id']} 没有有效的{spec.title}可签署", state=record["state"])
        doc = issued[-1]
        original = self.archive.read(doc["pdf"], doc["pdf_sha256"], tx)
        if original is None or sha256(original) != doc["pdf_sha256"]:
            raise StateError(f"{doc['number']} 的存档文件缺失或已被改动，无法核对签署版；"
                             f"请先运行 dealerdocs verify", number=doc["number"])
        try:
            returned = self.attachments.path_for(upload[0]["sha256"]).read_bytes()
        except (OSError, KeyError, TypeError) as err:
            raise InputError(f"无法读取上传的{label}：{err}", field=takes.file) from err
        from .. import signing

        roots = (signing.store_signer(self.config).trust_roots
                 if doc.get("store_signature") else ())
        try:
            customer = signing.check_returned(original, returned, doc["number"],
                                              doc.get("store_signature"),
                                              spec.customer_signature or "", roots)
        except InputError as err:   # said of the field the file came in
            raise InputError(err.message, field=takes.file, number=doc["number"]) from err
        relative = doc["pdf"][: -len(".pdf")] + ".signed.pdf"
        work.write(self.archive, tx, relative, returned)
        stamp = work.now.isoformat()
        signed = {**doc, "signed_pdf": relative, "signed_sha256": sha256(returned),
                  "signed_field": spec.customer_signature, "signed_by": customer.signer,
                  "signed_at": stamp}
        tx.put_document(signed)
        self.trail.register_event(tx, stamp, user, "signed", doc["number"],
                                  signed_sha256=signed["signed_sha256"], signer=customer.signer)
        return signed
