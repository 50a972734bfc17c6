"""The store's signature on what it issues (engine/signing.py, engine/certs.py): a contract
issued by a store that signs contracts validates in pyHanko's own validator against the test
CA; the customer signs the empty 乙方 field afterwards with another signer (pyHanko with a
certificate from another CA) and both signatures stay valid; a changed byte breaks it.
End to end through the engine with the session's warm LibreOffice: no fakes."""
from __future__ import annotations

import io
import json
import os
import re
from datetime import datetime, timezone
from pathlib import Path

import pytest

from engine import Engine, load_config
from engine import certs, signing
from engine.errors import ConfigError
from helpers import contract_data, make_dealer_dir, store_state

PASSWORD_ENV = "DEALERDOCS_CERT_PASSWORD"


@pytest.fixture(scope="session")
def test_certs(tmp_path_factory):
    """A test CA with the store's certificate (``cert make-test``), and a customer's
    certificate from a CA of its own (a customer signs with whatever certificate they have)."""
    made = certs.make_test(tmp_path_factory.mktemp("certs"), "北京星辰汽车销售服务有限公司")
    now = datetime.now(timezone.utc)
    customer = certs.issue(certs.make_ca("某电子认证服务机构（测试）", now), "刘晓明", now)
    return {**made, "customer": customer}


def signing_config(config_path: Path, certificate: str) -> Path:
    """The test dealership's config.toml with contracts signed by the store."""
    text = config_path.read_text(encoding="utf-8")
    text, n = re.subn(r'(?m)^certificate = ""', f'certificate = "{certificate}"', text)
    assert n == 1
    text, n = re.subn(r"(?m)^\[documents\.contract\]\n", "[documents.contract]\nsign = true\n", text)
    assert n == 1
    config_path.write_text(text, encoding="utf-8")
    return config_path


@pytest.fixture
def signing_engine(config_path, converter, clock, test_certs, monkeypatch):
    monkeypatch.setenv(PASSWORD_ENV, test_certs["password"])
    eng = Engine(load_config(signing_config(config_path, test_certs["certificate"])),
                 converter=converter, clock=clock)
    yield eng
    eng.close()


def issue_contract(eng: Engine, today) -> dict:
    """A contract drafted, approved if need be, and issued; its register entry."""
    case = eng.create("contract", contract_data(today), "zhang").id
    if eng.fire(case, "submit", "zhang").state == "pending_approval":
        eng.fire(case, "approve", "wang")
    [doc] = eng.fire(case, "issue", "zhang").documents
    return eng.document(doc.number, actor="wang") | {"case": case}


def validate(pdf: bytes, roots):
    """Every signature's status from pyHanko's validator, by field name."""
    from pyhanko.keys.internal import translate_pyca_cryptography_cert_to_asn1
    from pyhanko.pdf_utils.reader import PdfFileReader
    from pyhanko.sign.validation import validate_pdf_signature
    from pyhanko_certvalidator import ValidationContext

    reader = PdfFileReader(io.BytesIO(pdf))
    context = ValidationContext(trust_roots=[translate_pyca_cryptography_cert_to_asn1(c)
                                             for c in roots], allow_fetching=False)
    return {s.field_name: validate_pdf_signature(s, context) for s in reader.embedded_signatures}


def customer_signs(pdf: bytes, customer: certs.Identity) -> bytes:
    """The customer signs 乙方 with pyHanko (an approval signature, incremental)."""
    from pyhanko.keys.internal import (translate_pyca_cryptography_cert_to_asn1,
                                       translate_pyca_cryptography_key_to_asn1)
    from pyhanko.pdf_utils.incremental_writer import IncrementalPdfFileWriter
    from pyhanko.sign import signers
    from pyhanko_certvalidator.registry import SimpleCertificateStore

    signer = signers.SimpleSigner(
        signing_key=translate_pyca_cryptography_key_to_asn1(customer.key),
        signing_cert=translate_pyca_cryptography_cert_to_asn1(customer.certificate),
        cert_registry=SimpleCertificateStore.from_certs(
            [translate_pyca_cryptography_cert_to_asn1(c) for c in customer.chain]))
    out = signers.sign_pdf(IncrementalPdfFileWriter(io.BytesIO(pdf)),
                           signers.PdfSignatureMetadata(field_name="buyer_signature"),
                           signer=signer, existing_fields_only=True)
    return out.getvalue()


def store_roots(test_certs) -> list:
    return certs.trust_roots(certs.load(Path(test_certs["certificate"]), test_certs["password"]))


def test_issued_contract_signed_by_the_store_and_then_by_the_customer(signing_engine, clock,
                                                                      test_certs):
    doc = issue_contract(signing_engine, clock().date())
    pdf = Path(doc["pdf"]).read_bytes()
    assert doc["store_signature"] == "seller_signature"
    from engine.archive import sha256
    assert doc["pdf_sha256"] == sha256(pdf)          # the register holds the signed file's hash

    [(field, status)] = validate(pdf, store_roots(test_certs)).items()
    assert field == "seller_signature"
    assert status.bottom_line and status.trusted and status.docmdp_ok
    assert status.coverage.name == "ENTIRE_FILE"
    assert status.signing_cert.subject.native["common_name"] == "北京星辰汽车销售服务有限公司"
    from engine.pdf import signature_fields
    assert signature_fields(pdf)["buyer_signature"]["signed"] is False   # 乙方 left empty

    both = customer_signs(pdf, test_certs["customer"])
    assert both.startswith(pdf)                        # an incremental update
    found = validate(both, [*store_roots(test_certs), *test_certs["customer"].chain])
    store, buyer = found["seller_signature"], found["buyer_signature"]
    assert store.bottom_line and store.coverage.name == "ENTIRE_REVISION"
    assert store.modification_level.name == "FORM_FILLING" and store.docmdp_ok
    assert buyer.bottom_line and buyer.coverage.name == "ENTIRE_FILE"
    assert buyer.signing_cert.subject.native["common_name"] == "刘晓明"

    checked = {c.field: c for c in signing.check(both, store_roots(test_certs))}
    assert checked["seller_signature"].problem is None and checked["seller_signature"].trusted
    assert checked["buyer_signature"].problem is None
    assert not checked["buyer_signature"].trusted     # the customer's CA is not the store's

    flipped = bytearray(both)
    at = both.index(b"/DealerDocsNumber")
    flipped[at + 3] ^= 0x01
    assert {c.problem for c in signing.check(bytes(flipped), store_roots(test_certs))} == {
        "签名后内容被改动（摘要不符）"}


def test_password_missing_from_the_environment_is_named_before_anything_is_written(
        config_path, converter, clock, test_certs, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    eng = Engine(load_config(signing_config(config_path, test_certs["certificate"])),
                 converter=converter, clock=clock)
    try:
        case = eng.create("contract", contract_data(clock().date()), "zhang").id
        if eng.fire(case, "submit", "zhang").state == "pending_approval":
            eng.fire(case, "approve", "wang")
        config = load_config(config_path)
        before = store_state(config.store_dir), sorted(config.outbox_dir.rglob("*.pdf"))
        with pytest.raises(ConfigError) as caught:
            eng.fire(case, "issue", "zhang")
        assert store_state(config.store_dir) == before[0]
        assert sorted(config.outbox_dir.rglob("*.pdf")) == before[1]
    finally:
        eng.close()
    assert PASSWORD_ENV in caught.value.message and "环境变量" in caught.value.message


def test_make_test_refuses_to_overwrite_and_the_wrong_password_is_named(tmp_path):
    made = certs.make_test(tmp_path, "测试店")
    assert (Path(made["certificate"]).stat().st_mode & 0o777) == 0o600
    with pytest.raises(Exception) as again:
        certs.make_test(tmp_path, "测试店")
    with pytest.raises(ConfigError) as wrong:
        certs.load(Path(made["certificate"]), "not-the-password")
    assert "已存在" in str(again.value)
    assert "密码不对" in wrong.value.message
    shown = certs.describe(certs.load(Path(made["certificate"]), made["password"]))
    assert "测试店" in shown["subject"] and "测试 CA" in shown["chain"][0]


def test_the_signer_is_opened_once_and_again_for_a_renewed_file_or_password(
        config_path, tmp_path, monkeypatch):
    """Opening the PKCS#12 file costs ≈ 40 ms, so it is kept while the file and the password
    stay as they are; a renewed certificate at the same path, or a wrong password, applies
    at the next issue without a restart."""
    import shutil

    first = certs.make_test(tmp_path / "a", "北京星辰汽车销售服务有限公司")
    renewed = certs.make_test(tmp_path / "b", "北京星辰汽车销售服务有限公司",
                              password=first["password"])   # the same password: only the file
    config = load_config(signing_config(config_path, first["certificate"]))
    monkeypatch.setenv(PASSWORD_ENV, first["password"])
    kept = signing.store_signer(config).identity
    assert signing.store_signer(config).identity is kept

    shutil.copy(renewed["certificate"], first["certificate"])   # the CA renewed it in place
    os.utime(first["certificate"], ns=(1, 1))                    # whatever the clock's grain
    now = signing.store_signer(config).identity
    assert now is not kept and now.certificate == certs.load(
        Path(renewed["certificate"]), renewed["password"]).certificate
    monkeypatch.setenv(PASSWORD_ENV, "not-the-password")
    for _ in range(2):   # not remembered: said each time
        with pytest.raises(ConfigError) as wrong:
            signing.store_signer(config)
        assert "密码不对" in wrong.value.message


def test_cert_make_test_and_show_through_the_cli(tmp_path, monkeypatch):
    from helpers import ROOT, run_cli

    made = json.loads(run_cli("cert", "make-test", str(tmp_path / "certs"), "--config",
                              str(ROOT / "config.toml"), "--json", cwd=tmp_path).stdout)
    assert made["password_env"] == PASSWORD_ENV
    config = signing_config(make_dealer_dir(tmp_path / "dealer"), made["certificate"])
    refused = run_cli("cert", "show", "--config", str(config), cwd=tmp_path, check=False)
    assert refused.returncode == ConfigError.exit_code and PASSWORD_ENV in refused.stderr
    monkeypatch.setenv(PASSWORD_ENV, made["password"])
    shown = run_cli("cert", "show", "--config", str(config), cwd=tmp_path).stdout
    assert "北京星辰汽车销售服务有限公司" in shown and "有效期" in shown


def test_verify_checks_the_store_signature_and_reports_a_broken_one(signing_engine, clock,
                                                                   monkeypatch):
    doc = issue_contract(signing_engine, clock().date())
    assert signing_engine.verify() == []
    pdf = Path(doc["pdf"])
    data = bytearray(pdf.read_bytes())
    at = bytes(data).index(b"/DealerDocsNumber")
    data[at + 3] ^= 0x01                  # one byte inside the signed revision
    pdf.write_bytes(bytes(data))
    problems = {p["problem"]: p for p in signing_engine.verify()}
    assert problems["changed"]["number"] == doc["number"]
    assert "签名后内容被改动" in problems["signature"]["detail"]

    monkeypatch.delenv(PASSWORD_ENV)     # the chain cannot be checked: said, not skipped
    assert PASSWORD_ENV in {p["problem"]: p for p in signing_engine.verify()}[
        "signature_chain_unchecked"]["detail"]


def fire_sign(eng: Engine, case: str, folder: Path, pdf: bytes, today, name="signed.pdf"):
    """The contract's ``sign`` step with ``pdf`` attached, as the CLI's data file or the web
    form's upload gives it (a path relative to ``files_from``)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_bytes(pdf)
    return eng.fire(case, "sign", "zhang", {"signed_date": today.isoformat(),
                                            "signed_contract": [name]}, files_from=folder)


def test_sign_takes_back_the_customer_signed_contract_and_refuses_others(
        signing_engine, clock, test_certs, tmp_path, converter):
    from engine.errors import InputError

    today = clock().date()
    doc = issue_contract(signing_engine, today)
    issued = Path(doc["pdf"]).read_bytes()
    signed = customer_signs(issued, test_certs["customer"])

    refusals = {}
    with pytest.raises(InputError) as no_file:
        signing_engine.fire(doc["case"], "sign", "zhang", {"signed_date": today.isoformat()})
    refusals["no file"] = no_file.value.message
    with pytest.raises(InputError) as unsigned:
        fire_sign(signing_engine, doc["case"], tmp_path / "a", issued, today)
    refusals["unsigned"] = unsigned.value.message
    # the same contract made again (its .docx converted anew, finished with the same
    # metadata and fields, signed by the store): not the issued revision
    from engine.pdf import finish, read_metadata
    again = finish(converter.convert_many([Path(doc["docx"]).read_bytes()])[0],
                   read_metadata(issued), {"seller_signature": "甲方（盖章）",
                                           "buyer_signature": "乙方（签字或盖章）"})
    again = signing.store_signer(signing_engine.config).sign(again, "seller_signature", clock())
    with pytest.raises(InputError) as regenerated:
        fire_sign(signing_engine, doc["case"], tmp_path / "b",
                  customer_signs(again, test_certs["customer"]), today)
    refusals["regenerated"] = regenerated.value.message
    edited = bytearray(signed)
    edited[signed.index(b"/DealerDocsNumber") + 3] ^= 0x01
    with pytest.raises(InputError) as changed:
        fire_sign(signing_engine, doc["case"], tmp_path / "c", bytes(edited), today)
    refusals["edited"] = changed.value.message
    with pytest.raises(InputError) as appended:
        fire_sign(signing_engine, doc["case"], tmp_path / "d",
                  signed + b"1 0 obj\n<< /Injected true >>\nendobj\n", today)
    refusals["appended"] = appended.value.message
    assert signing_engine.case(doc["case"], actor="zhang")["state"] == "issued"

    result = fire_sign(signing_engine, doc["case"], tmp_path / "e", signed, today)
    assert result.state == "signed"
    entry = signing_engine.document(doc["number"], actor="wang")
    signed_file = signing_engine.document_file(doc["number"], "signed", actor="wang")
    assert signed_file.read_bytes() == signed and entry["signed_by"] == "刘晓明"
    from engine.archive import sha256
    assert entry["signed_sha256"] == sha256(signed)
    assert Path(doc["pdf"]).read_bytes() == issued          # the original stays as issued
    assert signing_engine.verify() == []

    assert "请上传客户签署后的 PDF" in refusals["no file"]
    assert "乙方还没有签名" in refusals["unsigned"]
    assert "重新生成" in refusals["regenerated"]
    assert "被修改过" in refusals["edited"]
    assert "乙方签名之后文件又被改动过" in refusals["appended"]


def test_a_signed_contract_stays_pdf_a_and_its_stamped_copy_carries_no_broken_signature(
        signing_engine, clock, test_certs):
    from pyhanko.pdf_utils.reader import PdfFileReader

    from engine import pdfa
    from engine.stamps import void_stamp

    doc = issue_contract(signing_engine, clock().date())
    pdf = Path(doc["pdf"]).read_bytes()
    assert pdfa.problems(pdf) == []                     # QR, signature fields, the seal
    both = customer_signs(pdf, test_certs["customer"])
    assert pdfa.problems(both) == []

    stamped = void_stamp(pdf, word="作废", when="2026年11月26日", reason="客户取消",
                         converter=signing_engine.converter)
    assert PdfFileReader(io.BytesIO(stamped)).embedded_signatures == []
    assert pdfa.problems(stamped) == []


def test_the_command_line_takes_the_signed_contract_with_file(dealer, test_certs, monkeypatch,
                                                            tmp_path):
    from helpers import cli_json, refused

    monkeypatch.setenv(PASSWORD_ENV, test_certs["password"])
    signing_config(dealer / "config.toml", test_certs["certificate"])
    case = cli_json(dealer, "new", "contract", "--as", "zhang", data=contract_data())["id"]
    if cli_json(dealer, "fire", case, "submit", "--as", "zhang")["state"] == "pending_approval":
        cli_json(dealer, "fire", case, "approve", "--as", "wang")
    [doc] = cli_json(dealer, "fire", case, "issue", "--as", "zhang")["documents"]
    signed = tmp_path / "客户签署版.pdf"
    signed.write_bytes(customer_signs(Path(doc["pdf"]).read_bytes(), test_certs["customer"]))
    data = tmp_path / "signing.json"
    data.write_text(json.dumps({"signed_date": contract_data()["deposit_date"]}), encoding="utf-8")

    assert "找不到文件" in refused(dealer, "fire", case, "sign", "--data", str(data),
                                "--file", f"signed_contract={tmp_path / 'nope.pdf'}", "--as", "zhang")
    assert "字段=文件路径" in refused(dealer, "fire", case, "sign", "--file", "signed.pdf",
                                  "--as", "zhang")
    done = cli_json(dealer, "fire", case, "sign", "--data", str(data),
                    "--file", f"signed_contract={signed}", "--as", "zhang")
    assert done["state"] == "signed"
    checked = cli_json(dealer, "check", str(signed))   # the paper the customer holds
    assert checked["ok"] and checked["facts"]["status_text"] == "已签署"
    assert checked["file"]["same"] == "客户签署后交回的存档件"


def test_the_case_page_takes_the_signed_contract_as_an_upload(signing_engine, clock,
                                                            test_certs):
    from engine.web.app import create_app
    from web_support import as_form, client, post_form, sign_in

    today = clock().date()
    doc = issue_contract(signing_engine, today)
    signed = customer_signs(Path(doc["pdf"]).read_bytes(), test_certs["customer"])
    c = client(create_app(signing_engine, secret=b"k" * 32))
    sign_in(c, "zhang")
    page = c.get(f"/cases/{doc['case']}").text
    assert 'name="signed_contract"' in page and 'type="file"' in page

    def upload(data: bytes):
        return post_form(c, f"/cases/{doc['case']}", f"/cases/{doc['case']}/fire/sign",
                         as_form({"signed_date": today.isoformat()}),
                         files=[("signed_contract", ("客户签署版.pdf", data, "application/pdf"))])

    refused = upload(Path(doc["pdf"]).read_bytes())            # nobody signed 乙方
    from web_support import errors_of
    assert refused.status_code == 422 and "乙方还没有签名" in " ".join(errors_of(refused.text)), errors_of(refused.text)
    done = upload(signed)
    assert done.status_code == 200
    assert signing_engine.case(doc["case"], actor="zhang")["state"] == "signed"
    document = c.get(f"/documents/{doc['number']}").text
    assert "已签署的 PDF" in document and "刘晓明" in document
    got = c.get(f"/documents/{doc['number']}/file/signed")
    assert got.status_code == 200 and got.content == signed
