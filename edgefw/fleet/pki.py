"""Keys, certificates and the CRL, with the ``cryptography`` package.

EC P-256 throughout: mbedtls on the ESP32 and in MicroPython's unix port
handles it, the keys are small, and signing on a board is cheap.
Client certificates carry ``clientAuth`` only and the broker's carries
``serverAuth`` only, so neither can stand in for the other.
"""

import datetime
import hashlib
import ipaddress

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from edgefw.fleet import FleetError


def utcnow():
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def iso(t):
    return t.astimezone(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_iso(s):
    return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)


def new_key():
    return ec.generate_private_key(ec.SECP256R1())


def key_pem(key):
    # unencrypted: the device has nowhere to keep a passphrase; the file's
    # mode (0600) and the device's flash are what protect it
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())


def cert_pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def fingerprint(cert):
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def _name(cn):
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def make_ca(name, days):
    key = new_key()
    now = utcnow()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(name))
        .issuer_name(_name(name))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(ski, critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert


def issue(ca_key, ca_cert, cn, public_key, not_before, not_after, server_hosts=None):
    """A leaf certificate for ``cn``: a client certificate, or with
    ``server_hosts`` (names and addresses) the broker's."""
    b = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(public_key)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    if server_hosts:
        alt = []
        for h in server_hosts:
            try:
                alt.append(x509.IPAddress(ipaddress.ip_address(h)))
            except ValueError:
                alt.append(x509.DNSName(h))
        b = b.add_extension(x509.SubjectAlternativeName(alt), critical=False)
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
    else:
        b = b.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    return b.sign(ca_key, hashes.SHA256())


def make_crl(ca_key, ca_cert, revoked, number, days):
    """``revoked``: (serial int, revocation time) pairs. ``days``: how long
    the CRL stays valid; OpenSSL refuses every client once it has expired,
    so it must be re-issued (``fleet broker-config``) well before."""
    now = utcnow()
    b = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now - datetime.timedelta(minutes=5))
        .next_update(now + datetime.timedelta(days=days))
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
    )
    for serial, when in sorted(revoked):
        b = b.add_revoked_certificate(x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(when).build())
    return b.sign(ca_key, hashes.SHA256())


def load_cert(path, fix):
    """The certificate in ``path``; a FleetError naming the file and
    ``fix`` if it is missing or is not one PEM certificate."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise FleetError("%s: cannot read it (%s); %s" % (path, e.strerror or e, fix))
    try:
        return x509.load_pem_x509_certificate(data)
    except ValueError as e:
        raise FleetError("%s: not a PEM certificate (%s); %s" % (path, e, fix))


def load_key(path, fix):
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise FleetError("%s: cannot read it (%s); %s" % (path, e.strerror or e, fix))
    try:
        return serialization.load_pem_private_key(data, None)
    except (ValueError, TypeError) as e:
        raise FleetError("%s: not an unencrypted PEM private key (%s); %s" % (path, e, fix))


def load_csr(path, cn):
    """The public key of the CSR in ``path`` (PEM or DER), made on the
    device for ``cn``. The CSR's signature proves the sender holds the
    private key; a CN other than ``cn`` means the wrong file."""
    try:
        data = open(path, "rb").read()
    except OSError as e:
        raise FleetError("%s: cannot read it (%s)" % (path, e.strerror or e))
    try:
        csr = x509.load_pem_x509_csr(data) if b"-----BEGIN" in data else x509.load_der_x509_csr(data)
    except ValueError as e:
        raise FleetError("%s: not a certificate signing request (%s); make one on the device, e.g. openssl req -new -key KEY -subj /CN=%s" % (path, e, cn))
    if not csr.is_signature_valid:
        raise FleetError("%s: its signature does not match its public key (corrupted or tampered); make a new one on the device" % path)
    names = [a.value for a in csr.subject.get_attributes_for_oid(NameOID.COMMON_NAME)]
    if names and names != [cn]:
        raise FleetError("%s: the request is for CN=%s, not %s; is it the right device's file?" % (path, names[0], cn))
    key = csr.public_key()
    if isinstance(key, ec.EllipticCurvePublicKey):
        if key.curve.name not in ("secp256r1", "secp384r1"):
            raise FleetError("%s: EC curve %s: use P-256 (prime256v1) or P-384" % (path, key.curve.name))
    elif isinstance(key, rsa.RSAPublicKey):
        if key.key_size < 2048:
            raise FleetError("%s: a %d-bit RSA key is too short: use 2048 bits or more, or EC P-256" % (path, key.key_size))
    else:
        raise FleetError("%s: a %s key: use EC P-256 or RSA" % (path, type(key).__name__))
    return key
