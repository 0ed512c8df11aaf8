// loadgen_tls.cpp — loadgen's TLS client over OpenSSL; see loadgen_tls.hpp.
#include "loadgen_tls.hpp"

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace bench {
namespace {

[[noreturn]] void config_error(const char* what, const std::string& value) {
    unsigned long e = ERR_get_error();
    char reason[256] = "unknown";
    if (e != 0) {
        ERR_error_string_n(e, reason, sizeof reason);
    }
    std::fprintf(stderr, "loadgen: TLS %s %s: %s\n", what, value.c_str(), reason);
    std::exit(2);
}

// Turns a failed OpenSSL call into the send()/recv() convention of the header.
ssize_t failed(SSL* ssl, int ret, const char* op, std::string& error) {
    const int saved = errno;
    const int e = SSL_get_error(ssl, ret);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
        errno = EAGAIN;
        return -1;
    }
    if (e == SSL_ERROR_ZERO_RETURN) {
        return 0;
    }
    const unsigned long code = ERR_get_error();
    ERR_clear_error();
    if (e == SSL_ERROR_SYSCALL && code == 0) {
        // The socket failed (errno), or the peer closed without a close_notify.
        errno = saved != 0 ? saved : EPIPE;
        error = std::string(op) + ": " +
                (saved != 0 ? std::strerror(saved) : "connection closed without close_notify");
        return -1;
    }
    char reason[256] = "unknown TLS error";
    if (code != 0) {
        ERR_error_string_n(code, reason, sizeof reason);
    }
    error = std::string(op) + ": " + reason;
    errno = EPROTO;
    return -1;
}

// Handshake and write: the peer's close_notify is a failure there, not an end of data.
int closed_is_failure(ssize_t r, const char* op, std::string& error) {
    if (r == 0) {
        error = std::string(op) + ": the server sent a close_notify";
        errno = EPIPE;
        return -1;
    }
    return static_cast<int>(r);
}

} // namespace

tls_client::tls_client(const loadgen_options& o) : m_resume(o.tls_resume) {
    m_ctx = SSL_CTX_new(TLS_client_method());
    if (m_ctx == nullptr) {
        config_error("context", "");
    }
    const int version = o.tls_version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    if (SSL_CTX_set_min_proto_version(m_ctx, version) != 1 ||
        SSL_CTX_set_max_proto_version(m_ctx, version) != 1) {
        config_error("version", o.tls_version == 12 ? "1.2" : "1.3");
    }
    if (!o.tls_ciphersuites.empty() &&
        SSL_CTX_set_ciphersuites(m_ctx, o.tls_ciphersuites.c_str()) != 1) {
        config_error("ciphersuites", o.tls_ciphersuites);
    }
    if (!o.tls_ciphers.empty() && SSL_CTX_set_cipher_list(m_ctx, o.tls_ciphers.c_str()) != 1) {
        config_error("ciphers", o.tls_ciphers);
    }
    if (!o.tls_ca.empty()) {
        if (SSL_CTX_load_verify_locations(m_ctx, o.tls_ca.c_str(), nullptr) != 1) {
            config_error("CA file", o.tls_ca);
        }
        SSL_CTX_set_verify(m_ctx, SSL_VERIFY_PEER, nullptr);
        // The bench's certificate names 127.0.0.1 (an IP SAN); loadgen only talks to loopback.
        X509_VERIFY_PARAM* param = SSL_CTX_get0_param(m_ctx);
        if (X509_VERIFY_PARAM_set1_ip_asc(param, o.host == "::1" ? "::1" : "127.0.0.1") != 1) {
            config_error("verify address", o.host);
        }
    } else {
        SSL_CTX_set_verify(m_ctx, SSL_VERIFY_NONE, nullptr);
    }
    // The client keeps sessions itself (keep_session); OpenSSL's cache stays off.
    SSL_CTX_set_session_cache_mode(m_ctx, SSL_SESS_CACHE_OFF);
    SSL_CTX_set_mode(m_ctx, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(m_ctx, 1);
}

tls_client::~tls_client() {
    SSL_SESSION_free(m_session); // null-safe
    SSL_CTX_free(m_ctx);
}

SSL* tls_client::start(int fd) {
    SSL* ssl = SSL_new(m_ctx);
    if (ssl == nullptr || SSL_set_fd(ssl, fd) != 1) {
        config_error("session for fd", std::to_string(fd));
    }
    SSL_set_connect_state(ssl);
    if (m_resume && m_session != nullptr) {
        SSL_set_session(ssl, m_session);
    }
    return ssl;
}

void tls_client::keep_session(SSL* ssl) {
    if (!m_resume) {
        return;
    }
    SSL_SESSION* s = SSL_get1_session(ssl);
    if (s != nullptr && SSL_SESSION_is_resumable(s) == 1) {
        SSL_SESSION_free(m_session);
        m_session = s;
    } else {
        SSL_SESSION_free(s);
    }
}

void tls_client::finish(SSL* ssl, bool notify) {
    if (ssl == nullptr) {
        return;
    }
    if (notify && SSL_is_init_finished(ssl) == 1) {
        (void)SSL_shutdown(ssl); // one non-blocking try; no wait for the server's answer
    }
    ERR_clear_error();
    SSL_free(ssl);
}

int tls_handshake(SSL* ssl, std::string& error) {
    errno = 0;
    const int r = SSL_do_handshake(ssl);
    if (r == 1) {
        return 1;
    }
    return closed_is_failure(failed(ssl, r, "TLS handshake", error), "TLS handshake", error);
}

ssize_t tls_send(SSL* ssl, const void* data, std::size_t len, std::string& error) {
    errno = 0;
    const int n = SSL_write(ssl, data, static_cast<int>(len));
    if (n > 0) {
        return n;
    }
    return closed_is_failure(failed(ssl, n, "TLS write", error), "TLS write", error);
}

ssize_t tls_recv(SSL* ssl, void* data, std::size_t len, std::string& error) {
    errno = 0;
    const int n = SSL_read(ssl, data, static_cast<int>(len));
    if (n > 0) {
        return n;
    }
    return failed(ssl, n, "TLS read", error);
}

} // namespace bench
