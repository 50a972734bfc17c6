"""Certificates for the store's signature: a self-signed test CA with a store certificate for
the demo and the tests (``dealerdocs cert make-test``), and what a PKCS#12 file holds
(``dealerdocs cert show``).

A test certificate has no legal weight: 《电子签名法》 Art. 13 and 16 ask for a certificate
from a licensed CA (电子认证服务机构) for a reliable electronic signature. The store then
exports the CA-issued certificate with its key and chain as a PKCS#12 file and points
``[signing] certificate`` at it (README, "The store's signature").
"""
from __future__ import annotations

import os
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.hazmat.primitives.serialization import pkcs12
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ConfigError, StorageError
from .files import atomic_write_bytes

TEST_VALIDITY = timedelta(days=3 * 365)


@dataclass(frozen=True)
class Identity:
    """A private key with its certificate and the CA certificates above it."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate
    chain: tuple[x509.Certificate, ...] = ()

    def pkcs12(self, password: str, friendly_name: str) -> bytes:
        return pkcs12.serialize_key_and_certificates(
            friendly_name.encode("utf-8"), self.key, self.certificate, list(self.chain) or None,
            serialization.BestAvailableEncryption(password.encode("utf-8")))


def _name(common_name: str, organisation: str | None = None) -> x509.Name:
    parts = [x509.NameAttribute(NameOID.COUNTRY_NAME, "CN")]
    if organisation:
        parts.append(x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation))
    parts.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(parts)


def make_ca(common_name: str, now: datetime) -> Identity:
    """A self-signed CA that may only issue end-entity certificates (path length 0)."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = _name(common_name)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + TEST_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=True, crl_sign=True,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()),
                           critical=False)
            .sign(key, hashes.SHA256()))
    return Identity(key, cert)


def issue(ca: Identity, common_name: str, now: datetime, organisation: str | None = None
          ) -> Identity:
    """An end-entity certificate for signing documents (non-repudiation), issued by ``ca``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    cert = (x509.CertificateBuilder().subject_name(_name(common_name, organisation))
            .issuer_name(ca.certificate.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - timedelta(days=1)).not_valid_after(now + TEST_VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, content_commitment=True,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, key_cert_sign=False,
                                         crl_sign=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca.key.public_key()), critical=False)
            .sign(ca.key, hashes.SHA256()))
    return Identity(key, cert, (ca.certificate,))


def make_test(folder: Path, store_name: str, now: datetime | None = None,
              password: str | None = None) -> dict[str, str]:
    """A test CA (``test-ca.pem``) and the store's certificate issued by it, with its key and
    the CA, as ``store.p12`` (mode 0600) in ``folder``; the password is made here unless given.
    Refuses to overwrite an existing ``store.p12`` (it may be the store's real one)."""
    folder = Path(folder).expanduser().resolve()
    target = folder / "store.p12"
    if target.exists():
        raise StorageError(f"{target} 已存在，未覆盖（它可能是本店正在使用的证书）；请换一个目录",
                           path=str(target))
    now = now or datetime.now(timezone.utc)
    password = password or secrets.token_urlsafe(18)
    ca = make_ca("dealerdocs 测试 CA（仅供演示，无法律效力）", now)
    store = issue(ca, store_name, now, organisation=store_name)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_bytes(folder / "test-ca.pem",
                           ca.certificate.public_bytes(serialization.Encoding.PEM))
        atomic_write_bytes(target, store.pkcs12(password, store_name))
        os.chmod(target, 0o600)
    except OSError as err:
        raise StorageError(f"无法写入证书到 {folder}：{err.strerror}", path=str(folder)) from err
    return {"certificate": str(target), "ca": str(folder / "test-ca.pem"), "password": password,
            "subject": store.certificate.subject.rfc4514_string(),
            "not_after": store.certificate.not_valid_after_utc.isoformat()}


def load(path: Path, password: str) -> Identity:
    """The key, certificate and chain of the PKCS#12 file at ``path``."""
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        raise ConfigError(f"找不到本店证书 {path}（config.toml 的 [signing] certificate）",
                          key="signing.certificate") from None
    except OSError as err:
        raise ConfigError(f"无法读取本店证书 {path}：{err.strerror}",
                          key="signing.certificate") from err
    try:
        key, cert, extra = pkcs12.load_key_and_certificates(data, password.encode("utf-8"))
    except ValueError:
        raise ConfigError(f"无法打开本店证书 {path}：密码不对，或不是 PKCS#12（.p12 / .pfx）文件",
                          key="signing.certificate") from None
    if key is None or cert is None:
        raise ConfigError(f"本店证书 {path} 中没有私钥或证书；请导出含私钥的 PKCS#12 文件",
                          key="signing.certificate")
    return Identity(key, cert, tuple(extra or ()))  # type: ignore[arg-type]


def trust_roots(identity: Identity) -> list[x509.Certificate]:
    """The certificates a store signature must chain to: the CA certificates in the store's
    PKCS#12 file (a CA's export carries its chain), or the certificate itself if it has none."""
    return list(identity.chain) or [identity.certificate]


def describe(identity: Identity) -> dict[str, object]:
    """Subject, issuer, validity and the CA chain of a store certificate (``cert show``)."""
    cert = identity.certificate
    return {"subject": cert.subject.rfc4514_string(), "issuer": cert.issuer.rfc4514_string(),
            "serial": format(cert.serial_number, "x"),
            "not_before": cert.not_valid_before_utc.isoformat(),
            "not_after": cert.not_valid_after_utc.isoformat(),
            "sha256": cert.fingerprint(hashes.SHA256()).hex(),
            "chain": [c.subject.rfc4514_string() for c in identity.chain]}
