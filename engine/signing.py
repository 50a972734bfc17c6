"""The store's own digital signature on what it issues, and the checks of signed PDFs
(PAdES with pyHanko; 《电子签名法》 Art. 13: any change after signing can be detected).

The store signs last, after every other change to the PDF (metadata, signature fields, QR,
PDF/A), as an *incremental update*: the finished bytes stay a prefix of the signed file, so a
PDF/A file stays PDF/A. It is a *certification* signature (DocMDP, P = 2): later revisions may
fill in forms and sign, nothing else; the customer then signs the empty 乙方 field with any tool
(another incremental update) without breaking the store's signature, and every other change
shows up as a modification in a validator.

The visible appearance (store name, 电子签章, time) is drawn in the Noto CJK face the templates
use (found through ``engine/fonts.conf``), subset to the appearance's characters and embedded.

Knows nothing of cases or stores: bytes in, bytes out; certificates from :mod:`engine.certs`.
"""
from __future__ import annotations

import functools
import io
import logging
import os
import subprocess
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Sequence

from .certs import Identity
from .errors import ConfigError, ConversionError, InputError

log = logging.getLogger(__name__)

FONT_FAMILY = "Noto Sans CJK SC"
SEAL_RED = (0.8, 0.0, 0.0)
REASON = "电子签章"


@functools.lru_cache(maxsize=4)
def font_file(family: str = FONT_FAMILY) -> tuple[str, int]:
    """The font file and face index fontconfig gives for ``family`` with the templates' font
    map (``engine/fonts.conf``), as LibreOffice finds the fonts of the documents."""
    from .convert import FONTS_CONF

    env = {**os.environ, "FONTCONFIG_FILE": str(FONTS_CONF)}
    try:
        out = subprocess.run(["fc-match", "-f", "%{file}|%{index}", family], env=env,
                             capture_output=True, text=True, check=True, timeout=30).stdout
    except (OSError, subprocess.SubprocessError) as err:
        raise ConversionError(f"找不到签章用的字体 {family}（fc-match：{err}）；"
                              f"请安装 Noto CJK 字体（make setup）") from err
    path, _, index = out.partition("|")
    if not path or not Path(path).is_file() or "CJK" not in Path(path).name:
        raise ConversionError(f"找不到签章用的中文字体 {family}（fontconfig 给出「{path}」）；"
                              f"请安装 Noto CJK 字体（make setup）")
    return path, int(index or 0)


def subset_font(text: str, family: str = FONT_FAMILY) -> bytes:
    """An OpenType font with just the glyphs of ``text`` (a CJK collection face is ~20 MB;
    pyHanko reads single fonts, not .ttc collections)."""
    from fontTools import subset, ttLib

    path, index = font_file(family)
    font = ttLib.TTFont(path, fontNumber=index, lazy=True)
    options = subset.Options()
    options.layout_features = ["*"]
    options.notdef_outline = True
    subsetter = subset.Subsetter(options)
    subsetter.populate(text=text)
    subsetter.subset(font)
    out = io.BytesIO()
    font.save(out)
    return out.getvalue()


@functools.lru_cache(maxsize=8)
def box_font(store_name: str) -> bytes:
    """The glyphs every box of the store needs (its name, 电子签章, any date and time), cut
    once per process: cutting them from the CJK collection costs about 0.3 s, and a box is
    drawn under the store's write lock."""
    return subset_font(store_name + REASON + "0123456789年月日 :")


def _font_factory(data: bytes, size: int):
    """A pyHanko font engine factory over font bytes in memory."""
    from pyhanko.pdf_utils.font.api import FontEngineFactory
    from pyhanko.pdf_utils.font.opentype import GlyphAccumulator

    class InMemory(FontEngineFactory):
        def create_font_engine(self, writer, obj_stream=None):
            return GlyphAccumulator(writer=writer, font_handle=io.BytesIO(data), font_size=size,
                                    ot_script_tag="hani", bcp47_lang_code="zh-CN",
                                    obj_stream=obj_stream)

    return InMemory()


def appearance_lines(store_name: str, when: datetime) -> list[str]:
    """What the store's signature box shows."""
    return [store_name, REASON, f"{when.year}年{when.month}月{when.day}日 {when:%H:%M}"]


def _asn1(cert):
    from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1

    return translate_pyca_cryptography_cert_to_asn1(cert)


class StoreSigner:
    """Signs PDFs as the store, with its certificate (a PKCS#12 identity)."""

    def __init__(self, identity: Identity, store_name: str) -> None:
        self.identity = identity
        self.store_name = store_name

    def sign(self, pdf: bytes, field: str, when: datetime, *, certify: bool = True) -> bytes:
        """``pdf`` with the store's signature in the existing empty signature field ``field``
        (the store's box), appended as an incremental update; ``when`` is the time the box
        shows. ``certify``: a certification signature allowing form filling and signing
        afterwards (the customer's)."""
        from pyhanko.keys.internal import translate_pyca_cryptography_key_to_asn1
        from pyhanko.pdf_utils import layout
        from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
        from pyhanko.pdf_utils.text import TextBoxStyle
        from pyhanko.sign import fields, signers
        from pyhanko.stamp import TextStampStyle
        from pyhanko_certvalidator.registry import SimpleCertificateStore

        from .pdf import one_producer

        lines = appearance_lines(self.store_name, when)
        style = TextStampStyle(
            stamp_text="\n".join(lines), border_width=2, border_color=SEAL_RED,
            text_box_style=TextBoxStyle(font=_font_factory(box_font(self.store_name), 11),
                                        font_size=11, leading=15, text_color=SEAL_RED),
            inner_content_layout=layout.SimpleBoxLayoutRule(
                x_align=layout.AxisAlignment.ALIGN_MID, y_align=layout.AxisAlignment.ALIGN_MID,
                margins=layout.Margins.uniform(4)))
        signer = signers.SimpleSigner(
            signing_key=translate_pyca_cryptography_key_to_asn1(self.identity.key),
            signing_cert=_asn1(self.identity.certificate),
            cert_registry=SimpleCertificateStore.from_certs(
                [_asn1(c) for c in self.identity.chain]))
        meta = signers.PdfSignatureMetadata(
            field_name=field, reason=REASON, name=self.store_name, certify=certify,
            docmdp_permissions=fields.MDPPerm.FILL_FORMS,
            subfilter=fields.SigSeedSubFilter.PADES, md_algorithm="sha256")
        try:
            writer = IncrementalPdfFileWriter(io.BytesIO(pdf), strict=False)
            one_producer(writer)
            out = signers.PdfSigner(meta, signer, stamp_style=style).sign_pdf(
                writer, existing_fields_only=True)
        except Exception as err:  # pyHanko raises many kinds (SigningError, PdfReadError, …)
            raise ConversionError(f"本店签章失败（签名域 {field}）：{err}", field=field) from err
        return out.getvalue()

    @property
    def trust_roots(self) -> list[Any]:
        from .certs import trust_roots

        return trust_roots(self.identity)


def password(config) -> str:
    """The store certificate's password from the environment variable ``[signing]
    password_env`` names; refused, naming the variable, when it is not set."""
    name = config.signing.password_env
    value = os.environ.get(name)
    if not value:
        raise ConfigError(f"环境变量 {name} 未设置：本店证书 {config.certificate_path} 的密码"
                          f"须放在这个环境变量中（[signing] password_env）；设置后再出具需本店签章的文件",
                          key="signing.password_env", variable=name)
    return value


def store_signer(config) -> StoreSigner:
    """The store's signer from config.toml's ``[signing]`` (certificate and password)."""
    path = config.certificate_path
    if path is None:
        raise ConfigError("config.toml 的 [signing] certificate 为空：本店没有签章证书",
                          key="signing.certificate")
    return StoreSigner(_identity(path, password(config)), config.dealer.name)


def _identity(path: Path, secret: str) -> Identity:
    """The PKCS#12 file at ``path``, opened once while it stays as it is: opening one costs
    ≈ 40 ms (its key derivation), and an issue asks for the signer in its rehearsal and in
    its real run, ``verify`` once more. A renewed file (another size or time) or another
    password is opened again; a failure is not remembered (it is raised each time)."""
    from . import certs

    try:
        st = path.stat()
    except OSError:
        return certs.load(path, secret)   # which names what is wrong with the path
    return _opened(str(path), st.st_size, st.st_mtime_ns, secret)


@functools.lru_cache(maxsize=4)
def _opened(path: str, size: int, mtime_ns: int, secret: str) -> Identity:
    from . import certs

    return certs.load(Path(path), secret)


# --- checking signed PDFs ------------------------------------------------------------------

@dataclass(frozen=True)
class Checked:
    """One signature of a PDF as a validator sees it."""

    field: str
    signer: str           # the certificate's common name (or the whole subject)
    intact: bool          # the signed bytes hash to what was signed
    valid: bool           # the signature over that hash verifies with the certificate
    trusted: bool         # the certificate chains to the trust roots given
    covers: str           # "entire_file" | "entire_revision" | "partial"
    modifications: str    # what later revisions did: "none" | "form_filling" | "other" …
    docmdp_ok: bool | None
    revision_end: int     # bytes the signature covers (the end of its revision)
    problem: str | None   # what is wrong with the signature itself, in Chinese; None = fine
                          # (whether its certificate is trusted is ``trusted``: the caller's call)

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def _signer_name(cert) -> str:
    try:
        return cert.subject.native.get("common_name") or cert.subject.human_friendly
    except Exception:  # noqa: BLE001 - a strange subject still gets a name
        return "（未知）"


def _end(sig) -> int:
    """Where the bytes a signature covers end (its /ByteRange's end)."""
    try:
        return int(sig.byte_range[2]) + int(sig.byte_range[3])
    except (TypeError, IndexError, ValueError):
        return 0


def check(pdf: bytes, trust_roots: Sequence[Any] = ()) -> list[Checked]:
    """Every signature of ``pdf``, validated with pyHanko against ``trust_roots``
    (cryptography certificates; none: ``trusted`` is False). A signature whose certificate
    does not chain to them (the customer's, from any CA) can still be intact and valid.
    A PDF that does not parse raises :class:`InputError`."""
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        embedded = list(reader.embedded_signatures)
    except Exception as err:  # noqa: BLE001 - any parse failure is "not a readable PDF"
        raise InputError(f"无法读取 PDF（{err}）", field="pdf") from err
    roots = [_asn1(c) for c in trust_roots]
    found = []
    for sig in embedded:
        context = ValidationContext(trust_roots=roots, allow_fetching=False,
                                    revocation_mode="soft-fail")
        try:
            status = validate_pdf_signature(sig, context)
        except Exception as err:  # noqa: BLE001 - a broken signature is a finding, not a crash
            found.append(Checked(sig.field_name, "（未知）", False, False, False, "partial",
                                 "other", None, 0, f"签名无法验证（{err}）"))
            continue
        covers = status.coverage.name.lower() if status.coverage else "partial"
        level = status.modification_level.name.lower() if status.modification_level else "other"
        trusted = bool(roots) and status.trusted
        problem = None
        if not status.intact:
            problem = "签名后内容被改动（摘要不符）"
        elif not status.valid:
            problem = "签名值无效"
        elif covers == "partial":
            problem = "签名没有覆盖其修订版的全部内容"
        elif status.docmdp_ok is False:
            problem = "签名后的修改超出了允许的范围（只允许填表和签名）"
        found.append(Checked(sig.field_name, _signer_name(status.signing_cert), status.intact,
                             status.valid, trusted, covers, level, status.docmdp_ok,
                             _end(sig), problem))
    return found


def check_returned(issued: bytes, returned: bytes, number: str, store_field: str | None,
                   customer_field: str, trust_roots: Sequence[Any]) -> Checked:
    """The customer's signature of ``returned``, the signed version of the issued PDF
    ``issued`` (document ``number``); refused with the reason (:class:`InputError`) unless
    ``returned`` is ``issued`` with only signing appended (the issued bytes are its prefix),
    the store's signature in ``store_field`` (if the store signed it) is intact, chains to
    ``trust_roots`` and covers exactly the issued file, and ``customer_field`` holds an intact
    signature (any certificate) over the whole file."""
    from .pdf import read_metadata

    def refuse(reason: str) -> InputError:
        return InputError(f"客户签署的文件不能接受：{reason}", field="signed_pdf", number=number)

    if returned == issued:
        raise refuse(f"这是出具的 {number} 原样，乙方还没有签名")
    if not returned.startswith(issued):
        try:
            theirs = read_metadata(returned).get("DealerDocsNumber")
        except Exception:  # noqa: BLE001 - not a readable PDF at all
            theirs = None
        if theirs is None:
            raise refuse(f"不是本店出具的文件（找不到文件编号；应为 {number}）")
        if theirs != number:
            raise refuse(f"这是文件 {theirs}，不是 {number}")
        raise refuse(f"内容与出具的 {number} 不同（被修改过，或是重新生成的）；签署只能在出具的文件"
                     f"之后追加签名，原有内容须一字不改")
    found = {c.field: c for c in check(returned, trust_roots)}
    for c in found.values():
        if c.problem:
            raise refuse(f"签名域 {c.field}（{c.signer}）的签名有问题：{c.problem}")
    if store_field is not None:
        store = found.get(store_field)
        if store is None or store.revision_end != len(issued):
            raise refuse(f"本店在 {number} 上的签章不见了或被替换")
        if not store.trusted:
            raise refuse(f"本店签章的证书（{store.signer}）不是本店的证书")
    customer = found.get(customer_field)
    if customer is None:
        raise refuse(f"乙方签名域（{customer_field}）没有签名")
    if customer.covers != "entire_file":
        raise refuse("乙方签名之后文件又被改动过")
    return customer
