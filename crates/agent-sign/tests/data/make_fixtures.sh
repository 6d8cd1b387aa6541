#!/bin/sh
# Regenerates the test fixtures of agent-sign. Needs python3 with pyca/cryptography
# (the library Checkmk itself uses) and the openssl command. The outputs are
# committed; the tests never run this script.
set -eu
cd "$(dirname "$0")"

# 1. A Checkmk-style key made the way Checkmk makes it: RSA-4096, a self-signed
#    certificate as in spec section 1.1, BestAvailableEncryption (PBKDF2, 2048
#    iterations), the combined PEM of an export, and a golden PKCS#1 v1.5/SHA-256
#    signature over package.bin.
python3 - <<'PY'
import datetime
from cryptography import x509
from cryptography.x509.oid import NameOID
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa, padding

def make(bits, alias, owner, site, passphrase, out, years=10):
    key = rsa.generate_private_key(public_exponent=65537, key_size=bits)
    name = x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, alias),
        x509.NameAttribute(NameOID.ORGANIZATION_NAME, f"Checkmk Site {site}"),
        x509.NameAttribute(NameOID.ORGANIZATIONAL_UNIT_NAME, owner),
    ])
    now = datetime.datetime(2026, 1, 1, tzinfo=datetime.timezone.utc)
    cert = (x509.CertificateBuilder()
        .subject_name(name).issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + datetime.timedelta(days=365 * years))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
        .sign(key, hashes.SHA512()))
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.BestAvailableEncryption(passphrase.encode()))
    cert_pem = cert.public_bytes(serialization.Encoding.PEM)
    open(out + ".key.pem", "wb").write(key_pem)
    open(out + ".crt.pem", "wb").write(cert_pem)
    open(out + ".combined.pem", "wb").write(key_pem + cert_pem)
    return key

key = make(4096, "signature", "cmkadmin", "mysite", "checkmk-fixture-pass", "pyca")
package = bytes((i * 31 + 7) % 251 for i in range(100_000))
open("package.bin", "wb").write(package)
sig = key.sign(package, padding.PKCS1v15(), hashes.SHA256())
open("package.pyca.sig", "wb").write(sig)
# The shape of Checkmk's public test vector: a 1024-bit key behind "foo".
make(1024, "small", "cmkadmin", "mysite", "foo", "small1024")
PY

# 2. Keys and certificates made by OpenSSL 3.
PASS=openssl-fixture-pass
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -aes-256-cbc -pass pass:$PASS -out openssl-rsa.key.pem
openssl req -new -x509 -key openssl-rsa.key.pem -passin pass:$PASS -sha256 -days 3650 \
    -subj "/CN=openssl/O=Checkmk Site other/OU=ops" -out openssl-rsa.crt.pem
openssl genpkey -algorithm ED25519 -aes-256-cbc -pass pass:$PASS -out openssl-ed25519.key.pem
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out plain-rsa.key.pem
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -aes-256-cbc -pass pass:$PASS -out openssl-ec.key.pem
# Encryption schemes we refuse to read: scrypt, a SHA-1 PRF, PBES1.
openssl pkcs8 -topk8 -scrypt -in plain-rsa.key.pem -passout pass:scrypt-pass -out scrypt-rsa.key.pem
openssl pkcs8 -topk8 -v2 aes-256-cbc -v2prf hmacWithSHA1 -in plain-rsa.key.pem -passout pass:sha1-pass -out sha1prf-rsa.key.pem
openssl pkcs8 -topk8 -v1 PBE-SHA1-3DES -in plain-rsa.key.pem -passout pass:pbes1-pass -out pbes1-rsa.key.pem
