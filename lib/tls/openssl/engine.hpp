// lib/tls/openssl/engine.hpp - one TLS session over a stream: the
// stream_transport that the stream's hook points call (net/stream_transport.hpp).
//
// I/O: the SSL object's only BIO is coio's own (engine.cpp). It reads from
// m_in, a view of the chunk the stream just read (a lent pool buffer), so
// ciphertext goes from the loop's buffer into OpenSSL's record buffer with no
// copy in between and the chunk is given back as soon as on_data returns;
// it writes by appending to m_out, the writer's buffer (or, during the
// handshake, m_hs_out), so records written in one loop pass leave in one
// send. SSL_MODE_RELEASE_BUFFERS frees OpenSSL's record buffers whenever they
// are empty, so an idle session holds only the SSL object and its keys.
#pragma once

#include "net/stream_transport.hpp"
#include "tls/openssl/context.hpp"

#include <openssl/ssl.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

namespace coio::detail {

struct ssl_deleter {
    void operator()(SSL* s) const noexcept { SSL_free(s); }
};

class tls_engine final : public stream_transport {
public:
    // Throws tls_error (config) if OpenSSL cannot make the session.
    tls_engine(std::shared_ptr<tls_context_impl> ctx, const tls_options& o, const address& peer);
    ~tls_engine() override;

    task<> handshake(socket* sock, byte_buffer* in, byte_buffer* out) override;
    bool on_data(std::string_view bytes, byte_buffer& in, byte_buffer& out) override;
    void on_eof() noexcept override;
    std::error_code write(std::string_view data, byte_buffer& out) override;
    void write_eof(byte_buffer& out) noexcept override;
    [[nodiscard]] std::chrono::milliseconds shutdown_timeout() const noexcept override {
        return m_shutdown_timeout;
    }
    [[nodiscard]] std::optional<tls_info> info() const override;

    // For the BIO (engine.cpp).
    std::string_view m_in;
    byte_buffer* m_out = nullptr;
    bool m_out_of_memory = false; // a write to m_out failed: the session is lost

    // The key this client's sessions are cached under; empty: no caching.
    [[nodiscard]] const std::string& session_key() const noexcept { return m_session_key; }
    [[nodiscard]] tls_context_impl& context() const noexcept { return *m_ctx; }

private:
    task<> handshake_steps(socket* sock, byte_buffer* in);
    // SSL_read until the input is used up: plaintext appended to `in`.
    // Returns true at the peer's close_notify. Throws tls_error (protocol).
    bool read_records(byte_buffer& in);
    // The tls_error for the SSL call that just failed (reads OpenSSL's error
    // queue, so call it before any wait) and marks the session failed;
    // throws std::bad_alloc instead if the BIO could not buffer a record.
    tls_error failure(tls_errc code, const char* op, int ssl_error);
    // "TLS handshake with 127.0.0.1:443 (example.com)", "TLS read from ..."
    [[nodiscard]] std::string describe(const char* op) const;

    std::shared_ptr<tls_context_impl> m_ctx;
    std::unique_ptr<SSL, ssl_deleter> m_ssl;
    std::string m_peer;        // "127.0.0.1:443 (example.com)", for messages
    std::string m_session_key; // client: server name + address
    byte_buffer m_hs_out;      // handshake messages on their way out
    byte_buffer m_pending;     // plaintext written before the handshake ended
    std::chrono::milliseconds m_handshake_timeout;
    std::chrono::milliseconds m_shutdown_timeout;
    bool m_server = false;
    bool m_established = false;
    bool m_failed = false;
    bool m_sent_close_notify = false;
    bool m_got_close_notify = false;
    bool m_truncated = false;
};

// The client's new-session callback (SSL_CTX_sess_set_new_cb): files the
// session under the engine's key. Returns 1 (it keeps the reference) or 0.
int cache_new_session(SSL* ssl, SSL_SESSION* s);

// tls_info of an established session (info.cpp).
tls_info describe_session(const SSL* ssl);

} // namespace coio::detail
