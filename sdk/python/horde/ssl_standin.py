"""`ssl` in Horde's sandbox, where Python has no OpenSSL.

Libraries import `ssl` for its names (`SSLContext`, `SSLError`, constants)
long before they do TLS, and some cannot be imported without it (scramp,
and so pg8000). This module is what `import ssl` gives when the real one is
missing: the names exist and contexts can be configured, and the first
thing that would do TLS itself (`wrap_socket`, `wrap_bio`, a socket or
object made directly) raises `SSLError` saying what to use instead:
`https://` through requests, urllib or http.client (the host does TLS, under
the run's grants and `--insecure`), or `horde.grpc.secure_channel`.
"""

import enum
import socket as _socket

MESSAGE = (
    "TLS from inside the scenario is not available in Horde's sandbox (its Python has no "
    "OpenSSL). Use https:// URLs through requests, urllib or http.client: Horde's host does "
    "the TLS (certificates are checked unless the run has --insecure); for gRPC use "
    "horde.grpc.secure_channel"
)

# Shaped like OpenSSL's, so libraries that check the version (urllib3) do
# not warn; this module does no TLS at all.
OPENSSL_VERSION = "OpenSSL 3.0.0 (stand-in: Horde's sandbox has no TLS, the host does it)"
OPENSSL_VERSION_INFO = (3, 0, 0, 0, 0)
OPENSSL_VERSION_NUMBER = 0x30000000
HAS_SNI = HAS_ALPN = HAS_ECDH = HAS_NPN = HAS_PSK = False
HAS_NEVER_CHECK_COMMON_NAME = True
HAS_TLSv1 = HAS_TLSv1_1 = False
HAS_TLSv1_2 = HAS_TLSv1_3 = True
CHANNEL_BINDING_TYPES = []


class SSLError(OSError):
    pass


class SSLZeroReturnError(SSLError):
    pass


class SSLWantReadError(SSLError):
    pass


class SSLWantWriteError(SSLError):
    pass


class SSLSyscallError(SSLError):
    pass


class SSLEOFError(SSLError):
    pass


class SSLCertVerificationError(SSLError, ValueError):
    pass


CertificateError = SSLCertVerificationError


class _SSLMethod(enum.IntEnum):
    PROTOCOL_TLS = 2
    PROTOCOL_TLS_CLIENT = 16
    PROTOCOL_TLS_SERVER = 17
    PROTOCOL_SSLv23 = 2


globals().update(_SSLMethod.__members__)


class VerifyMode(enum.IntEnum):
    CERT_NONE = 0
    CERT_OPTIONAL = 1
    CERT_REQUIRED = 2


globals().update(VerifyMode.__members__)


class VerifyFlags(enum.IntFlag):
    VERIFY_DEFAULT = 0
    VERIFY_CRL_CHECK_LEAF = 0x4
    VERIFY_CRL_CHECK_CHAIN = 0xC
    VERIFY_X509_STRICT = 0x20
    VERIFY_X509_TRUSTED_FIRST = 0x8000
    VERIFY_X509_PARTIAL_CHAIN = 0x80000


globals().update(VerifyFlags.__members__)


class Options(enum.IntFlag):
    OP_ALL = 0x80000054
    OP_NO_SSLv2 = 0
    OP_NO_SSLv3 = 0x2000000
    OP_NO_TLSv1 = 0x4000000
    OP_NO_TLSv1_1 = 0x10000000
    OP_NO_TLSv1_2 = 0x8000000
    OP_NO_TLSv1_3 = 0x20000000
    OP_NO_COMPRESSION = 0x20000
    OP_NO_TICKET = 0x4000
    OP_NO_RENEGOTIATION = 0x40000000
    OP_CIPHER_SERVER_PREFERENCE = 0x400000
    OP_SINGLE_DH_USE = 0
    OP_SINGLE_ECDH_USE = 0
    OP_ENABLE_MIDDLEBOX_COMPAT = 0x100000
    OP_IGNORE_UNEXPECTED_EOF = 0x80


globals().update(Options.__members__)


class TLSVersion(enum.IntEnum):
    MINIMUM_SUPPORTED = -2
    SSLv3 = 768
    TLSv1 = 769
    TLSv1_1 = 770
    TLSv1_2 = 771
    TLSv1_3 = 772
    MAXIMUM_SUPPORTED = -1


class Purpose(enum.Enum):
    SERVER_AUTH = "1.3.6.1.5.5.7.3.1"
    CLIENT_AUTH = "1.3.6.1.5.5.7.3.2"


class SSLContext:
    """Holds settings like the real one; cannot make a TLS connection."""

    sslsocket_class = None
    sslobject_class = None

    def __init__(self, protocol=PROTOCOL_TLS_CLIENT, *args, **kwargs):
        self.protocol = protocol
        self.check_hostname = protocol == PROTOCOL_TLS_CLIENT
        self.verify_mode = CERT_REQUIRED if self.check_hostname else CERT_NONE
        self.verify_flags = VERIFY_DEFAULT
        self.options = OP_ALL
        self.minimum_version = TLSVersion.MINIMUM_SUPPORTED
        self.maximum_version = TLSVersion.MAXIMUM_SUPPORTED
        self.post_handshake_auth = False
        self.hostname_checks_common_name = False
        self.keylog_filename = None

    def _settings(self, *args, **kwargs):
        return None

    load_verify_locations = load_cert_chain = load_default_certs = _settings
    set_default_verify_paths = set_ciphers = set_alpn_protocols = _settings
    set_npn_protocols = set_ecdh_curve = load_dh_params = set_servername_callback = _settings

    def get_ca_certs(self, binary_form=False):
        return []

    def get_ciphers(self):
        return []

    def cert_store_stats(self):
        return {"crl": 0, "x509": 0, "x509_ca": 0}

    def wrap_socket(self, *args, **kwargs):
        raise SSLError(MESSAGE)

    def wrap_bio(self, *args, **kwargs):
        raise SSLError(MESSAGE)


class SSLObject:
    def __init__(self, *args, **kwargs):
        raise SSLError(MESSAGE)


class SSLSocket(_socket.socket):
    def __init__(self, *args, **kwargs):
        raise SSLError(MESSAGE)


class MemoryBIO:
    def __init__(self, *args, **kwargs):
        raise SSLError(MESSAGE)


def create_default_context(purpose=Purpose.SERVER_AUTH, *, cafile=None, capath=None,
                           cadata=None):
    return SSLContext(PROTOCOL_TLS_CLIENT if purpose == Purpose.SERVER_AUTH
                      else PROTOCOL_TLS_SERVER)


def _create_unverified_context(*args, **kwargs):
    context = SSLContext(PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = CERT_NONE
    return context


_create_default_https_context = create_default_context
_create_stdlib_context = _create_unverified_context


class DefaultVerifyPaths(tuple):
    pass


def get_default_verify_paths():
    return DefaultVerifyPaths((None, None, None, None, None, None))


def wrap_socket(*args, **kwargs):
    raise SSLError(MESSAGE)


def get_server_certificate(*args, **kwargs):
    raise SSLError(MESSAGE)


def DER_cert_to_PEM_cert(der):
    import base64
    import textwrap

    body = "\n".join(textwrap.wrap(base64.standard_b64encode(der).decode("ascii"), 64))
    return f"-----BEGIN CERTIFICATE-----\n{body}\n-----END CERTIFICATE-----\n"


def RAND_bytes(n):
    import os

    return os.urandom(n)


def RAND_status():
    return True
