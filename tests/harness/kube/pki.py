"""Certificates and kubeconfigs of the lane's cluster, generated with the `cryptography` package.

One CA signs everything. Files (PEM) go to `<run>/pki`, mode 0600 for keys:
- ca.crt/ca.key: the cluster CA (also the controller-manager's signer for kubelet CSRs);
- apiserver.crt/key: serving cert, SANs = the `kubernetes` Service IP, the node IP, 127.0.0.1
  and the in-cluster DNS names (what clients dial);
- sa.key/sa.pub: ServiceAccount token signing pair;
- client certs (CN = user, O = group, as the API server's x509 authenticator reads them):
  admin (system:masters), kube-controller-manager, kube-scheduler, kube-proxy,
  system:node:<node> (system:nodes, what the Node authorizer expects), the API server's client
  to kubelets (apiserver-kubelet-client), and CoreDNS (its own user, bound to a read-only role).
"""

from __future__ import annotations

import datetime
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALIDITY = datetime.timedelta(days=30)  # a test cluster lives minutes to hours


@dataclass(frozen=True)
class Client:
    file: str  # base name of the .crt/.key pair and of its kubeconfig
    user: str  # certificate CN
    group: str = ""  # certificate O


def _write_key(path: Path, key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> None:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    path.write_bytes(pem)
    path.chmod(0o600)


def _write_cert(path: Path, cert: x509.Certificate) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _name(cn: str, org: str = "") -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.COMMON_NAME, cn)]
    if org:
        attrs.insert(0, x509.NameAttribute(NameOID.ORGANIZATION_NAME, org))
    return x509.Name(attrs)


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + VALIDITY)
    )


@dataclass
class Pki:
    dir: Path

    def path(self, name: str) -> Path:
        return self.dir / name

    def create_ca(self) -> None:
        key = ec.generate_private_key(ec.SECP256R1())
        name = _name("rag-kube-ca")
        cert = (
            _builder(name, name, key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(True, False, False, False, False, True, True, False, False), critical=True
            )  # digital_signature, key_cert_sign, crl_sign
            .sign(key, hashes.SHA256())
        )
        _write_key(self.path("ca.key"), key)
        _write_cert(self.path("ca.crt"), cert)

    def _ca(self) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
        cert = x509.load_pem_x509_certificate(self.path("ca.crt").read_bytes())
        key = serialization.load_pem_private_key(self.path("ca.key").read_bytes(), None)
        assert isinstance(key, ec.EllipticCurvePrivateKey)
        return cert, key

    def issue(self, file: str, cn: str, org: str = "", *, server_names: list[str] | None = None) -> None:
        """Sign `<file>.crt`/`<file>.key`: a client cert, or a serving cert when server_names is given."""
        ca_cert, ca_key = self._ca()
        key = ec.generate_private_key(ec.SECP256R1())
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server_names is not None else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(_name(cn, org), ca_cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if server_names is not None:
            builder = builder.add_extension(x509.SubjectAlternativeName(_sans(server_names)), critical=False)
        _write_key(self.path(f"{file}.key"), key)
        _write_cert(self.path(f"{file}.crt"), builder.sign(ca_key, hashes.SHA256()))

    def create_service_account_keys(self) -> None:
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        _write_key(self.path("sa.key"), key)
        pub = key.public_key().public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        self.path("sa.pub").write_bytes(pub)

    def kubeconfig(self, client: Client, server: str, context: str) -> Path:
        """`<file>.kubeconfig` (0600) naming the CA, the server and the client's cert pair by path."""
        doc = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [
                {"name": context, "cluster": {"server": server, "certificate-authority": str(self.path("ca.crt"))}}
            ],
            "users": [
                {
                    "name": client.user,
                    "user": {
                        "client-certificate": str(self.path(f"{client.file}.crt")),
                        "client-key": str(self.path(f"{client.file}.key")),
                    },
                }
            ],
            "contexts": [{"name": context, "context": {"cluster": context, "user": client.user}}],
            "current-context": context,
        }
        path = self.path(f"{client.file}.kubeconfig")
        path.write_text(yaml.safe_dump(doc, sort_keys=False))
        path.chmod(0o600)
        return path


def _sans(names: list[str]) -> list[x509.GeneralName]:
    sans: list[x509.GeneralName] = []
    for name in names:
        try:
            sans.append(x509.IPAddress(ipaddress.ip_address(name)))
        except ValueError:
            sans.append(x509.DNSName(name))
    return sans


def create(
    pki_dir: Path, *, clients: list[Client], apiserver_names: list[str], server: str, context: str
) -> dict[str, Path]:
    """Write the CA, serving/SA keys, every client pair and its kubeconfig; {client file: kubeconfig}."""
    pki_dir.mkdir(parents=True, exist_ok=True)
    pki_dir.chmod(0o700)
    pki = Pki(pki_dir)
    pki.create_ca()
    pki.issue("apiserver", "kube-apiserver", server_names=apiserver_names)
    pki.create_service_account_keys()
    configs = {}
    for client in clients:
        pki.issue(client.file, client.user, client.group)
        configs[client.file] = pki.kubeconfig(client, server, context)
    return configs
