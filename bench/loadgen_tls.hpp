// loadgen_tls.hpp — the load generator's TLS client side, on OpenSSL directly (bench code:
// the library's TLS is what is measured, so the client must not share it).
//
// One tls_client per worker thread holds the SSL_CTX: the protocol version pinned
// (min = max = --tls-version), the TLS 1.3 suites (--tls-ciphersuites, default
// TLS_AES_128_GCM_SHA256) or the TLS 1.2 list (--tls-ciphers), read-ahead on (fewer read
// calls in the client, which shares nothing with the server's measurement), no session
// cache. With --tls-ca the server's chain is verified against that file and its IP SAN
// against 127.0.0.1; without it nothing is verified.
//
// Sessions are full handshakes unless --tls-resume: then a reconnecting connection offers
// the last session this worker's previous connection received.
//
// The I/O calls work on a non-blocking socket and never block. They return what a plain
// send()/recv() would: a byte count, 0 at the peer's close_notify (read), or -1 with errno
// EAGAIN (OpenSSL wants the socket readable or writable: wait for the next epoll edge) or
// another errno, and then `error` names the failure (OpenSSL's reason, or the errno text).
#pragma once

#include "loadgen_options.hpp"

#include <sys/types.h>

#include <cstddef>
#include <string>

using SSL = struct ssl_st;
using SSL_CTX = struct ssl_ctx_st;
using SSL_SESSION = struct ssl_session_st;

namespace bench {

class tls_client {
public:
    // Exits 2 naming the option when OpenSSL refuses it (a bad cipher name, an unreadable CA).
    explicit tls_client(const loadgen_options& opts);
    ~tls_client();
    tls_client(const tls_client&) = delete;
    tls_client& operator=(const tls_client&) = delete;

    // A client session on the connected socket fd (the last kept session offered if any).
    SSL* start(int fd);
    // After a complete exchange: keep ssl's session for the next start() (--tls-resume only).
    void keep_session(SSL* ssl);
    // Frees the session (not the fd); with `notify`, first sends a close_notify if the
    // socket takes it at once (never after a failed call: OpenSSL forbids it then).
    static void finish(SSL* ssl, bool notify);

private:
    SSL_CTX* m_ctx = nullptr;
    SSL_SESSION* m_session = nullptr;
    bool m_resume = false;
};

// One step of the handshake: 1 done, -1 with errno EAGAIN (wait for an edge), or -1 with
// `error` set (failed).
int tls_handshake(SSL* ssl, std::string& error);
ssize_t tls_send(SSL* ssl, const void* data, std::size_t len, std::string& error);
ssize_t tls_recv(SSL* ssl, void* data, std::size_t len, std::string& error);

} // namespace bench
