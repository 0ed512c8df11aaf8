// lib/tls/openssl/errors.cpp - OpenSSL's reason strings (errors.hpp).
#include "tls/openssl/errors.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>

namespace coio::detail {

namespace {

// The first (innermost) error of the queue is the cause; later ones are the
// calls it failed through. Its reason string, with the detail text OpenSSL
// attached (a file name, "calling fopen(...)") when there is one.
std::string first_reason(unsigned long* code) {
    const char* data = nullptr;
    int flags = 0;
    unsigned long e = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
    *code = e;
    if (e == 0) {
        return {};
    }
    const char* r = ERR_reason_error_string(e);
    std::string out = r != nullptr ? r : "OpenSSL error " + std::to_string(ERR_GET_REASON(e));
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
        out += " (";
        out += data;
        out += ')';
    }
    ERR_clear_error();
    return out;
}

} // namespace

ssl_failure take_ssl_failure(const SSL* ssl, int ssl_error) {
    ssl_failure f;
    unsigned long code = 0;
    f.reason = first_reason(&code);
    if (code != 0 && ERR_GET_LIB(code) == ERR_LIB_SSL &&
        ERR_GET_REASON(code) == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        f.verify = true;
        if (ssl != nullptr) {
            long v = SSL_get_verify_result(ssl);
            if (v != X509_V_OK) {
                f.reason += ": ";
                f.reason += X509_verify_cert_error_string(v);
            }
        }
    }
    if (f.reason.empty()) {
        switch (ssl_error) {
        case SSL_ERROR_SYSCALL:
            f.reason = "unexpected end of the connection";
            break;
        case SSL_ERROR_ZERO_RETURN:
            f.reason = "the peer closed the TLS session (close_notify)";
            break;
        default:
            f.reason = "OpenSSL error " + std::to_string(ssl_error);
            break;
        }
    }
    return f;
}

std::string take_error_queue(const char* fallback) {
    unsigned long code = 0;
    std::string r = first_reason(&code);
    return r.empty() ? std::string(fallback) : r;
}

} // namespace coio::detail
