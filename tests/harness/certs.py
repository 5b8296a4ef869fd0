"""Test certificates, made here with the `cryptography` package: a CA, and server certificates it
signs for the names a client will check (DNS names and IP addresses).

The stand-in MaaS serves HTTPS with one, and llama-stack does when the tests turn its TLS on.
Keys are ECDSA P-256, PEM (PKCS #8, unencrypted): they only ever protect loopback or a cluster
this machine made. Callers write the keys they keep with owner-only permissions.
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)  # longer than any run folder is kept
BACKDATE = datetime.timedelta(minutes=5)  # a clock a little behind still accepts it


@dataclass(frozen=True)
class Served:
    """A server's certificate chain (its certificate, then the CA's) and its key, in PEM."""

    chain: str
    key: str


@dataclass(frozen=True)
class Authority:
    """A CA: `pem` is the trust bundle clients load; `issue` signs server certificates."""

    name: str
    key: ec.EllipticCurvePrivateKey
    cert: x509.Certificate

    @classmethod
    def new(cls, name: str) -> Authority:
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True, key_cert_sign=True, crl_sign=True, content_commitment=False,
                    key_encipherment=False, data_encipherment=False, key_agreement=False,
                    encipher_only=False, decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )  # fmt: skip
        return cls(name, key, cert)

    @property
    def pem(self) -> str:
        return _pem(self.cert)

    def issue(self, names: list[str]) -> Served:
        """A server certificate for `names` (each an IP address or a DNS name; the first is its
        subject), with the chain a server presents."""
        if not names:
            raise ValueError("a server certificate needs at least one name")
        key = ec.generate_private_key(ec.SECP256R1())
        cert = (
            _builder(names[0], self.name, key.public_key())
            .add_extension(x509.SubjectAlternativeName(sans(names)), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        return Served(_pem(cert) + self.pem, _pem_key(key))


def sans(names: list[str]) -> list[x509.GeneralName]:
    """Subject alternative names: an IP address where the name is one, a DNS name otherwise."""
    found: list[x509.GeneralName] = []
    for name in dict.fromkeys(names):
        try:
            found.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            found.append(x509.DNSName(name))
    return found


def _builder(subject: str, issuer: str, public_key: ec.EllipticCurvePublicKey) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, issuer)]))
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - BACKDATE)
        .not_valid_after(now + VALIDITY)
    )


def _pem(cert: x509.Certificate) -> str:
    return cert.public_bytes(serialization.Encoding.PEM).decode()


def _pem_key(key: ec.EllipticCurvePrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()
