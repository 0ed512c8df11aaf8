"""Test certificates for the TLS tests of tests/logcollect, made at test time
with the openssl command in the test's temporary directory (no private key
is committed): a CA, and a server certificate for localhost / 127.0.0.1 /
::1 signed by it (EC P-256, 3 days), as tests/tls/tls_support.cpp makes
them."""
import shutil
import subprocess
import sys

from lcsupport import SKIP

NEWKEY = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]


def skip_unless_openssl():
    if shutil.which("openssl") is None:
        print("SKIP: the openssl command (Debian package openssl) is not installed")
        sys.exit(SKIP)


def _run(d, argv):
    r = subprocess.run(argv, cwd=d, capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise RuntimeError(f"{' '.join(argv)} failed: {r.stderr.strip()}")


def make_certs(d):
    """Writes ca.pem, server.pem and server.key into directory `d`; returns
    {"ca": path, "cert": path, "key": path}."""
    _run(d, ["openssl", "req", "-x509", *NEWKEY, "-keyout", "ca.key", "-out", "ca.pem",
             "-days", "3", "-subj", "/CN=coio logcollect test CA"])
    (d / "server.ext").write_text(
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n")
    _run(d, ["openssl", "req", *NEWKEY, "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost"])
    _run(d, ["openssl", "x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
             "-set_serial", "2", "-days", "3", "-extfile", "server.ext", "-out", "server.pem"])
    return {"ca": d / "ca.pem", "cert": d / "server.pem", "key": d / "server.key"}
