// lib/tls/openssl/errors.hpp - OpenSSL's reason strings for coio's errors.
#pragma once

#include <openssl/ssl.h>

#include <string>

namespace coio::detail {

// What OpenSSL's thread-local error queue says went wrong, and empties it.
struct ssl_failure {
    std::string
        reason; // "wrong version number", "certificate verify failed: certificate has expired"
    bool verify = false; // the peer's certificate or name did not verify
};

// After an SSL call failed with SSL_get_error() == `ssl_error` on `ssl`
// (null for context calls).
ssl_failure take_ssl_failure(const SSL* ssl, int ssl_error);

// The queue's first reason, or `fallback` if it is empty; empties it.
std::string take_error_queue(const char* fallback);

} // namespace coio::detail
