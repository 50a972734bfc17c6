"""The store checked against itself and against seals kept elsewhere.

``verify`` re-checks the hash chains, the register against its log and its index, each case's
copy of its log entries, every issued file and attachment (re-hashed) and the register head
each issued PDF recorded; ``seal`` writes one line a dealership keeps outside the store (see
:mod:`engine.seal`) and ``verify --seal`` checks the chains still extend every seal. Reads the
store under its shared lock and the archive (outbox or database) with no lock held; writes only the seal line and,
once, the seal key.
"""
from __future__ import annotations

import dataclasses
import logging
import os
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Mapping

from .. import chain
from .. import seal as sealing
from ..archive import Archive, Attachments, FileProblem, sha256, verify_files
from ..config import Config
from ..errors import ConfigError, InputError, IntegrityError, NotFoundError, StorageError
from ..files import create_once
from ..seal import LABELS as LOG_LABELS
from ..store import LOGS, Store, Tx
from ..workflow import Workflow

log = logging.getLogger(__name__)


class Integrity:
    """Verification and seals of one store and its archive of issued files."""

    def __init__(self, config: Config, workflows: Mapping[str, Workflow], store: Store,
                 archive: Archive, attachments: Attachments,
                 clock: Callable[[], datetime]) -> None:
        self.config = config
        self.workflows = workflows
        self.store = store
        self.archive = archive
        self.attachments = attachments
        self.clock = clock

    def verify(self, seals: str | Path | None = None) -> list[dict[str, Any]]:
        """Check the store and its archive; one entry per problem (empty = all good): the hash
        chains, the register against its log and index, each case's copy of its log entries,
        every issued file and attachment re-hashed, and the register_log head each issued PDF
        recorded. With ``seals`` (a file of ``dealerdocs seal`` lines), also that the chains
        extend every seal of this store (see :mod:`engine.seal`)."""
        sealed = self.read_seals(seals) if seals is not None else None  # key, file: fail first
        with self.store.snapshot() as tx:
            cases = list(tx.cases_in_store())
            docs = [d for c in cases for d in tx.case_documents(c["id"])]
            logs = {name: tx.log_entries(name) for name in LOGS}
            register_problems = self._verify_register(tx, docs, logs, [c["id"] for c in cases])
            indexed = len(tx.find_documents())
        seal_problems = self._seal_problems(seals, sealed, logs, indexed) \
            if sealed is not None else []
        entries = []
        for d in docs:
            if d.get("files_purged"):
                continue   # erased on purpose (dealerdocs purge); the register keeps the hashes
            entries.append((d["number"], d["docx"], d["docx_sha256"]))
            if d.get("stamped_pdf"):
                entries.append((d["number"], d["stamped_pdf"], d["stamped_sha256"]))
        problems = [dataclasses.asdict(p) for p in self.archive.verify_files(entries)]
        kept = [d for d in docs if not d.get("files_purged")]
        trust = self.trust() if any(d.get("store_signature") for d in kept) else Trust(None)
        problems += self.pdf_problems(kept, logs["register_log"], trust)  # one read each
        problems += self.signed_version_problems(kept, trust)
        if trust.unchecked:
            problems.append({"number": "signing", "path": str(self.config.certificate_path),
                             "problem": "signature_chain_unchecked",
                             "detail": f"未核对签名证书链：{trust.unchecked}"})
        attached = []
        for case in cases:
            wf = self.workflows.get(case["workflow"])
            for name, spec in (wf.fields.items() if wf else ()):
                if spec.type == "attachments":
                    attached += [(case["id"], self.attachments.path_for(a["sha256"]),
                                  a["sha256"]) for a in case["data"].get(name) or []]
        problems += [dataclasses.asdict(p) for p in verify_files(attached)]
        return register_problems + seal_problems + problems

    def document_count(self) -> int:
        """How many documents the store has issued (no one's data: for ``verify``)."""
        with self.store.snapshot() as tx:
            return len(tx.find_documents())

    # --- seals -------------------------------------------------------------------------------

    def seal(self, out: str | Path | None = None) -> dict[str, Any]:
        """A seal of the store now (:mod:`engine.seal`): each chain's length and head and the
        number of documents, with an HMAC made with the key of ``[seal] key`` (outside the
        store; made 0600 on first use). Appended to ``out`` if given. The line is meant to be
        kept where the store's users cannot change it (printed, or on another disk)."""
        target = self._outside_store(Path(out), "封存文件") if out is not None else None
        with self.store.snapshot() as tx:
            heads = {}
            for name in sealing.CHAINS:
                entries = tx.log_entries(name)
                problem = chain.check(entries, tx.chain_head(name))
                if problem:
                    raise IntegrityError(f"不能封存：{sealing.LABELS[name]}：{problem}；"
                                         f"请先运行 dealerdocs verify 查明原因", chain=name)
                heads[name] = sealing.Head(entries[-1]["seq"] if entries else 0,
                                        tx.chain_head(name) or chain.GENESIS)
            docs = len(tx.find_documents())
        key, created = self._seal_key(create=True)
        try:
            record = sealing.make(self.config.site_code, self.clock(), heads, docs, key)
        except sealing.SealError as err:
            raise ConfigError(f"无法封存：{err}", key="dealer.code") from None
        if target is not None:
            _append_line(target, record.line)
        return {**record.to_dict(), "key": str(self.config.seal_key_path),
                "key_created": created, "out": str(target) if target else None}

    def read_seals(self, path: str | Path) -> list[sealing.Line]:
        """The seal lines of the file at ``path``, parsed and authenticated with the key."""
        path = Path(path).expanduser()
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise NotFoundError(f"找不到封存文件 {path}", path=str(path)) from None
        except UnicodeDecodeError:
            raise InputError(f"封存文件 {path} 不是 UTF-8 文本", field="seal") from None
        except OSError as err:
            raise StorageError(f"无法读取封存文件 {path}：{err.strerror}", path=str(path)) from err
        key, _ = self._seal_key(create=False)
        return sealing.read_lines(text, self.config.site_code, key)

    def _seal_problems(self, path: str | Path, lines: list[sealing.Line],
                       logs: Mapping[str, list[dict[str, Any]]], docs: int
                       ) -> list[dict[str, Any]]:
        where = str(Path(path).expanduser())
        problems = [{"number": "seal", "path": f"{where}:{line.number}",
                     "problem": f"seal_{line.status}",
                     "detail": f"封存文件 {where} 第 {line.number} 行：{line.detail}"}
                    for line in lines if line.status in ("forged", "malformed")]
        ours = {line.seal: line.number for line in lines if line.status == "ok"}
        if not ours:
            problems.append({"number": "seal", "path": where, "problem": "seal_none",
                             "detail": f"封存文件 {where} 中没有本店（{self.config.site_code}）"
                                       f"可核对的封存"})
        hashes = {name: sealing.recomputed_hashes(logs[name]) for name in sealing.CHAINS}
        for found in sealing.compare(list(ours), hashes, docs):
            problems.append({"number": found.chain, "path": f"{where}:{ours[found.seal]}",
                             "problem": "seal_broken", "first": found.first, "last": found.last,
                             "detail": f"{found.detail}（封存文件 {where} 第 {ours[found.seal]} 行）"})
        return problems

    def _seal_key(self, create: bool) -> tuple[bytes, bool]:
        """The seal key's bytes (surrounding whitespace dropped) and whether it was just made."""
        path = self.config.seal_key_path
        created = False
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            if not create:
                raise ConfigError(f"找不到封存密钥 {path}（config.toml 的 [seal] key）；没有生成封存时"
                                  f"用的那把密钥就无法核对封存", key="seal.key") from None
            data, created = _create_key(path)
        except OSError as err:
            raise ConfigError(f"无法读取封存密钥 {path}：{err.strerror}", key="seal.key") from err
        try:
            return sealing.check_key(data.strip()), created
        except sealing.SealError as err:
            raise ConfigError(f"封存密钥 {path}：{err}；请换用生成封存时的那把密钥（或删除它，"
                              f"让 dealerdocs seal 生成新的，但以前的封存将无法再核对）",
                              key="seal.key") from None

    def _outside_store(self, path: Path, what: str) -> Path:
        path = path.expanduser().resolve()
        for name, label in (("store", "数据库目录"), ("outbox", "输出目录")):
            folder = self.config.path(name).resolve()
            if path.is_relative_to(folder):
                raise InputError(f"{what} {path} 在{label} {folder} 之内；请写到数据库之外"
                                 f"（如 U 盘或另一台电脑），否则能改写数据库的人也能改它", field="out")
        return path

    # --- the register against its log --------------------------------------------------------

    def _verify_register(self, tx: Tx, documents: list[dict[str, Any]],
                         logs: Mapping[str, list[dict[str, Any]]], case_ids: list[str]
                         ) -> list[dict[str, Any]]:
        """The chains hold, the register (``documents``, read from the cases' files) agrees
        with its log and with the document index, and every case's copy of its log entries is
        the chain's (naming the first break). ``logs``: the chains read in the same snapshot."""
        problems = []
        for table, what in LOG_LABELS.items():
            problem = chain.check(logs[table], tx.chain_head(table))
            if problem:
                problems.append({"number": table, "path": what, "problem": "chain",
                                 "detail": f"{what}：{problem}"})
        docs = {d["number"]: d for d in documents}
        issued = {e["number"]: e for e in logs["register_log"] if e["event"] == "issued"}
        indexed = {d["number"]: d for d in tx.find_documents()}
        for number in sorted(set(docs) | set(indexed)):
            a, b = docs.get(number), indexed.get(number)
            if a is None or b is None or tx.case_of(number) != a["case_id"] or a != b:
                problems.append({"number": number, "path": "index", "problem": "index",
                                 "detail": f"文件 {number} 的索引与案件文件中的登记不一致"})
        for number, event in sorted(issued.items(), key=lambda kv: kv[1]["seq"]):
            d = docs.get(number)
            if d is None:
                problems.append({"number": number, "path": "documents", "problem": "missing_entry",
                                 "detail": f"登记簿缺少文件 {number}（发放登记日志第 {event['seq']} 条记载其出具）"})
            elif d["pdf_sha256"] != event.get("pdf_sha256"):
                problems.append({"number": number, "path": "documents", "problem": "entry_changed",
                                 "detail": f"登记簿中 {number} 的哈希与出具时记录的不符"})
        for number in sorted(set(docs) - set(issued)):
            problems.append({"number": number, "path": "register_log", "problem": "unlogged",
                             "detail": f"文件 {number} 在发放登记日志中没有出具记录"})
        return problems + self._verify_case_copies(tx, logs, case_ids)

    def _verify_case_copies(self, tx: Tx, logs: Mapping[str, list[dict[str, Any]]],
                            case_ids: list[str]) -> list[dict[str, Any]]:
        """Each case's own copy of its audit and register_log entries (what its history and the
        separation-of-duties rule read) is exactly the chain's entries about that case: one
        problem per case and chain, the earliest entry first."""
        found = []
        for name, what in LOG_LABELS.items():
            about: dict[str, list[dict[str, Any]]] = {}
            for entry in logs[name]:
                case_id = entry.get("case_id") or (tx.case_of(entry["number"])
                                                   if entry.get("number") else None)
                if case_id:
                    about.setdefault(case_id, []).append(entry)
            for case_id in sorted(set(about) | set(case_ids)):
                problem = copy_difference(tx.case_log(name, case_id), about.get(case_id, []))
                if problem:
                    seq, text = problem
                    found.append((seq, {"number": case_id, "path": what, "problem": "case_copy",
                                        "detail": f"案件 {case_id} 的文件中{what}{text}"}))
        return [p for _, p in sorted(found, key=lambda sp: sp[0])]

    def pdf_problems(self, documents: list[dict[str, Any]],
                     register_log: list[dict[str, Any]], trust: "Trust | None" = None
                     ) -> list[dict[str, Any]]:
        """Each issued PDF, read once: re-hashed against the register (a missing or changed
        file, as :func:`archive.verify_files` reports it), and the register_log head it
        recorded at issue (``/DealerDocsRegisterHash``) must still be an entry of the log
        before the document's own "issued" event. A head the log no longer has means the log
        was rewritten after the document went out. A PDF the store signed: its signatures
        (:meth:`signature_problems`, trusting ``trust``). Reads the archive, outside the
        store's lock."""
        from pypdf.errors import PyPdfError

        from ..pdf import read_metadata

        issued = {e["number"]: e for e in register_log if e.get("event") == "issued"}
        seq_of = {e.get("hash"): e.get("seq") for e in register_log}
        problems = []
        for d in documents:
            number, expected = d["number"], d["pdf_sha256"]
            path = self.archive.describe(d["pdf"], expected)
            pdf = self.archive.read(d["pdf"], expected)
            if pdf is None:
                problems.append(dataclasses.asdict(FileProblem(number, str(path), "missing",
                                                               expected, None)))
                continue
            actual = sha256(pdf)
            if actual != expected:
                problems.append(dataclasses.asdict(FileProblem(number, str(path), "changed",
                                                               expected, actual)))
            if d.get("store_signature"):   # a changed file too: was its signature broken?
                problems += self.signature_problems(number, str(path), pdf, d["store_signature"],
                                                    trust or self.trust())
            if actual != expected:
                continue
            if number not in issued:
                continue   # reported by the register check ("unlogged")
            try:
                recorded = read_metadata(pdf).get("DealerDocsRegisterHash")
            except (PyPdfError, ValueError) as err:
                problems.append({"number": number, "path": str(path), "problem": "register_head",
                                 "detail": f"无法读取文件 {number} 的 PDF 元数据（{err}）"})
                continue
            problem = head_problem(number, recorded, issued[number], register_log, seq_of)
            if problem:
                problems.append({"number": number, "path": str(path), "problem": "register_head",
                                 "detail": problem})
        return problems

    def signed_version_problems(self, documents: list[dict[str, Any]], trust: "Trust"
                                ) -> list[dict[str, Any]]:
        """The signed versions the customers returned (``signed_pdf``): re-hashed, and their
        signatures checked (the store's and the customer's)."""
        problems = []
        for d in documents:
            if not d.get("signed_pdf"):
                continue
            number, expected = d["number"], d["signed_sha256"]
            path = str(self.archive.describe(d["signed_pdf"], expected))
            pdf = self.archive.read(d["signed_pdf"], expected)
            if pdf is None or sha256(pdf) != expected:
                problems.append(dataclasses.asdict(FileProblem(
                    number, path, "missing" if pdf is None else "changed", expected,
                    None if pdf is None else sha256(pdf))))
            if pdf is not None and d.get("signed_field"):
                problems += self.signature_problems(number, path, pdf,
                                                    d.get("store_signature") or "", trust,
                                                    countersigned=d["signed_field"])
        return problems

    def signature_problems(self, number: str, path: str, pdf: bytes, field: str,
                           trust: "Trust", countersigned: str | None = None
                           ) -> list[dict[str, Any]]:
        """The signatures of an issued PDF whose register entry says the store signed it in
        ``field``: there, intact, chaining to the store certificate's CA and covering the whole
        file; with ``countersigned`` (the customer's field of a signed version), the store's
        covers its revision and only form filling and signing came after, and the customer's
        is intact and covers the whole file (any CA: the customer's certificate is theirs).
        Stamped versions (作废 / 已收回) are not checked: stamping rewrites the pages, so they
        are marked copies, not signed documents; the signed original stays beside them."""
        from .. import signing

        def problem(kind: str, detail: str) -> dict[str, Any]:
            return {"number": number, "path": path, "problem": kind, "detail": detail}

        roots = trust.roots
        try:
            found = {c.field: c for c in signing.check(pdf, roots or ())}
        except InputError as err:
            return [problem("signature", f"文件 {number} 的签名无法读取：{err.message}")]
        out = []
        for name, whose, whole in (*(((field, "本店", countersigned is None),) if field else ()),
                                   *(((countersigned, "客户", True),) if countersigned else ())):
            c = found.get(name)
            if c is None:
                out.append(problem("signature", f"文件 {number} 的{whose}签名（签名域 {name}）不见了"))
            elif c.problem:
                out.append(problem("signature", f"文件 {number} 的{whose}签名（{c.signer}）：{c.problem}"))
            elif whole and c.covers != "entire_file":
                out.append(problem("signature", f"文件 {number} 的{whose}签名之后还有未签名的改动"))
            elif whose == "本店" and roots is not None and not c.trusted:
                out.append(problem("signature", f"文件 {number} 的本店签名证书（{c.signer}）不能追溯到"
                                                f" [signing] certificate 的签发机构"))
        return out

    def trust(self) -> "Trust":
        """The CA certificates of the store's certificate (the chain in its PKCS#12 file), read
        now (a renewed certificate applies at once); when they cannot be read (no password in
        the environment) signatures are checked for integrity only, and ``verify`` says why
        the chain was not."""
        from .. import signing

        try:
            return Trust(signing.store_signer(self.config).trust_roots)
        except ConfigError as err:
            return Trust(None, err.message)


@dataclasses.dataclass(frozen=True)
class Trust:
    """What store signatures must chain to; ``roots`` None = not known (``unchecked`` says why)."""

    roots: list[Any] | None
    unchecked: str | None = None


def copy_difference(copy: list[Mapping[str, Any]], entries: list[Mapping[str, Any]]
                    ) -> tuple[int, str] | None:
    """The first seq at which a case's copy of a log differs from the chain's ``entries``
    about that case, with what is wrong (in Chinese, to follow "…的文件中审计记录"), or None."""
    mine = {e.get("seq"): e for e in copy}
    theirs = {e.get("seq"): e for e in entries}
    if len(mine) != len(copy):
        seq = next(s for s in mine if sum(e.get("seq") == s for e in copy) > 1)
        return _seq_key(seq), f"第 {seq} 条出现了不止一次"
    for seq in sorted(set(mine) | set(theirs), key=_seq_key):
        a, b = mine.get(seq), theirs.get(seq)
        if a is None:
            return _seq_key(seq), f"缺少第 {seq} 条（链中有这一条）"
        if b is None:
            return _seq_key(seq), f"第 {seq} 条在链中没有（或链中这一条不属于该案件）"
        if a != b:
            keys = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            return _seq_key(seq), f"第 {seq} 条与链中的不一致（不同之处：{'、'.join(keys)}）"
    return None


def head_problem(number: str, recorded: str | None, event: Mapping[str, Any],
                 log: list[Mapping[str, Any]], seq_of: Mapping[str, Any]) -> str | None:
    """Whether the register_log head a PDF recorded at issue (``recorded``) fits the log as it
    is now: an entry before the document's "issued" ``event``, or the genesis hash when every
    entry before that event was written in the same transaction. None if it fits."""
    issued = event["seq"]
    if recorded is None:
        if "kind" not in event:   # issued before PDFs carried the head (a migrated schema-1 store)
            return None
        return f"文件 {number} 的 PDF 中没有记载出具时发放登记日志的链尾哈希（DealerDocsRegisterHash）"
    if recorded == chain.GENESIS:
        earlier = [e for e in log if _seq_key(e.get("seq")) < issued and e.get("at") != event.get("at")]
        if not earlier:
            return None
        return (f"文件 {number} 的 PDF 记载出具时发放登记日志为空，但其出具记录（第 {issued} 条）之前"
                f"已有更早的第 {earlier[0].get('seq')} 条：发放登记日志在该文件出具之后被改写")
    seq = seq_of.get(recorded)
    if seq is None:
        return (f"文件 {number} 的 PDF 记载的出具时发放登记日志链尾哈希 {recorded[:16]}… 不在现在的日志中："
                f"发放登记日志中第 {issued} 条（该文件的出具记录）之前的记录在出具之后被改写")
    if _seq_key(seq) >= issued:
        return (f"文件 {number} 的 PDF 记载的出具时发放登记日志链尾是第 {seq} 条，"
                f"却不在它自己的出具记录（第 {issued} 条）之前：发放登记日志被改写或重排")
    return None


def _seq_key(seq: Any) -> int:
    return seq if isinstance(seq, int) and not isinstance(seq, bool) else -1



def _create_key(path: Path) -> tuple[bytes, bool]:
    """A new random seal key at ``path`` (mode 0600), written whole or not at all and never
    replacing a key another process made at the same moment; (the key, whether ours is it)."""
    try:
        made = create_once(path, (secrets.token_hex(32) + "\n").encode("ascii"))
        if made:
            log.info("made the seal key %s", path)
        return path.read_bytes(), made
    except OSError as err:
        raise StorageError(f"无法生成封存密钥 {path}：{err.strerror}；可以自行生成："
                           f"openssl rand -hex 32 > {path} && chmod 600 {path}",
                           path=str(path)) from err


def _append_line(path: Path, line: str) -> None:
    """Append ``line`` to the text file ``path`` (made if missing), synced to disk."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "ab+") as fh:
            fh.seek(0, os.SEEK_END)
            if fh.tell():
                fh.seek(-1, os.SEEK_END)
                if fh.read(1) != b"\n":
                    fh.write(b"\n")
            fh.write(line.encode("utf-8") + b"\n")
            fh.flush()
            os.fsync(fh.fileno())
    except OSError as err:
        raise StorageError(f"无法写入封存文件 {path}：{err.strerror}", path=str(path)) from err
