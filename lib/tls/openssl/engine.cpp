// lib/tls/openssl/engine.cpp - one TLS session over a stream (engine.hpp).
#include "tls/openssl/engine.hpp"

#include "sys/fd.hpp"
#include "tls/openssl/errors.hpp"

#include <coio/timeout.hpp>

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>
#include <new>
#include <stdexcept>
#include <system_error>

namespace coio::detail {

namespace {

// Plaintext is decrypted straight into the reader's buffer, this much room at
// a time (SSL_read hands out a longer record in pieces).
constexpr std::size_t read_room = 4096;

// A record carries up to 16 KiB of plaintext plus at most this much: header,
// explicit nonce, tag, padding (TLS 1.2 CBC with SHA-384 is the worst case).
constexpr std::size_t record_size = 16384;
constexpr std::size_t record_overhead = 5 + 16 + 48 + 256;

// --- the BIO: reads from the chunk being processed, writes to the stream's buffer ----------

int bio_read(BIO* b, char* out, std::size_t len, std::size_t* done) {
    auto* e = static_cast<tls_engine*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    if (e->m_in.empty()) {
        BIO_set_retry_read(b); // SSL_ERROR_WANT_READ: the next chunk comes later
        *done = 0;
        return 0;
    }
    const std::size_t n = std::min(len, e->m_in.size());
    std::memcpy(out, e->m_in.data(), n);
    e->m_in.remove_prefix(n);
    *done = n;
    return 1;
}

int bio_write(BIO* b, const char* in, std::size_t len, std::size_t* done) {
    auto* e = static_cast<tls_engine*>(BIO_get_data(b));
    BIO_clear_retry_flags(b);
    try {
        e->m_out->append(std::string_view(in, len));
    } catch (...) {                // out of memory; no exception may cross OpenSSL's C frames
        e->m_out_of_memory = true; // the failing SSL call reports it (failure())
        *done = 0;
        return 0;
    }
    *done = len;
    return 1;
}

long bio_ctrl(BIO*, int cmd, long, void*) {
    return cmd == BIO_CTRL_FLUSH ? 1 : 0; // nothing is held back: the stream sends
}

BIO_METHOD* coio_bio_method() {
    static BIO_METHOD* const method = [] {
        BIO_METHOD* m = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "coio stream");
        if (m == nullptr || BIO_meth_set_read_ex(m, bio_read) != 1 ||
            BIO_meth_set_write_ex(m, bio_write) != 1 || BIO_meth_set_ctrl(m, bio_ctrl) != 1) {
            throw tls_error(tls_errc::config, "TLS: cannot create OpenSSL's BIO method",
                            "BIO_meth_new failed");
        }
        return m;
    }();
    return method;
}

std::string format_duration(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) {
        return std::to_string(d.count() / 1000) + " s";
    }
    return std::to_string(d.count()) + " ms";
}

} // namespace

tls_engine::tls_engine(std::shared_ptr<tls_context_impl> ctx, const tls_options& o,
                       const address& peer)
    : m_ctx(std::move(ctx)), m_peer(peer.to_string()), m_handshake_timeout(o.handshake_timeout),
      m_shutdown_timeout(o.shutdown_timeout), m_server(m_ctx->server) {
    if (o.handshake_timeout.count() <= 0 || o.shutdown_timeout.count() <= 0) {
        throw std::invalid_argument("coio: TLS handshake and shutdown timeouts must be positive");
    }
    ERR_clear_error();
    m_ssl.reset(SSL_new(m_ctx->ctx.get()));
    BIO* bio = m_ssl ? BIO_new(coio_bio_method()) : nullptr;
    if (bio == nullptr) {
        std::string reason = take_error_queue("out of memory");
        throw tls_error(tls_errc::config, "TLS session with " + m_peer + ": " + reason, reason,
                        m_peer);
    }
    BIO_set_data(bio, this);
    BIO_set_init(bio, 1);
    SSL_set_bio(m_ssl.get(), bio, bio); // one BIO both ways: the SSL owns it
    SSL_set_app_data(m_ssl.get(), this);
    if (m_server) {
        SSL_set_accept_state(m_ssl.get());
        return;
    }
    SSL_set_connect_state(m_ssl.get());
    // A DNS name goes out as SNI and is checked against the DNS SANs; an IP
    // address (given, or the peer's when none is) against the IP SANs, and
    // is not sent as SNI (RFC 6066 §3).
    std::string name = o.server_hostname;
    bool is_ip = true;
    if (name.empty()) {
        name = peer.host();
    } else {
        is_ip = address::try_parse(name, 0).has_value();
    }
    if (!is_ip) {
        m_peer += " (" + name + ")";
        if (SSL_set_tlsext_host_name(m_ssl.get(), name.c_str()) != 1) {
            std::string reason = take_error_queue("invalid name");
            throw tls_error(tls_errc::config, "TLS server name '" + name + "': " + reason, reason,
                            m_peer);
        }
    }
    if (m_ctx->check_hostname) {
        int ok = 0;
        if (!name.empty()) {
            ok = is_ip ? X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(m_ssl.get()), name.c_str())
                       : SSL_set1_host(m_ssl.get(), name.c_str());
        }
        if (ok != 1) {
            std::string reason = take_error_queue("no name to check the certificate against");
            throw tls_error(tls_errc::config,
                            "TLS server name '" + name + "' for " + m_peer + ": " + reason, reason,
                            m_peer);
        }
    }
    if (m_ctx->resume) {
        m_session_key = name + '|' + peer.to_string();
        if (SSL_SESSION* s = m_ctx->sessions.get(m_session_key)) {
            SSL_set_session(m_ssl.get(), s); // takes its own reference
            SSL_SESSION_free(s);
        }
    }
}

tls_engine::~tls_engine() = default;

std::string tls_engine::describe(const char* op) const {
    const bool from =
        std::strcmp(op, "read") == 0 || (m_server && std::strcmp(op, "handshake") == 0);
    return std::string("TLS ") + op + (from ? " from " : " with ") + m_peer;
}

tls_error tls_engine::failure(tls_errc code, const char* op, int ssl_error) {
    m_failed = true;
    if (m_out_of_memory) {
        // The BIO could not buffer a record: not the peer's fault, and not
        // what OpenSSL's error queue would call it.
        ERR_clear_error();
        throw std::bad_alloc();
    }
    ssl_failure f = take_ssl_failure(m_ssl.get(), ssl_error);
    if (f.verify) {
        code = tls_errc::verify;
    }
    return tls_error(code, describe(op) + ": " + f.reason, f.reason, m_peer);
}

task<> tls_engine::handshake(socket* sock, byte_buffer* in, byte_buffer* out) {
    try {
        co_await wait_for(handshake_steps(sock, in), m_handshake_timeout);
    } catch (const timeout_error&) {
        m_failed = true;
        std::string reason = "timed out after " + format_duration(m_handshake_timeout);
        throw tls_error(tls_errc::handshake_timeout, describe("handshake") + ": " + reason, reason,
                        m_peer);
    }
    if (!m_pending.empty()) { // written while the handshake ran
        std::error_code ec = write(m_pending.view(), *out);
        m_pending.clear();
        m_pending.release_if_empty(0);
        if (ec) {
            throw failure(tls_errc::protocol, "write", SSL_ERROR_SSL);
        }
    }
}

task<> tls_engine::handshake_steps(socket* sock, byte_buffer* in) {
    chunk_result chunk; // the lease is given back before every wait
    for (;;) {
        m_out = &m_hs_out;
        ERR_clear_error();
        const int rc = SSL_do_handshake(m_ssl.get());
        const int err = rc == 1 ? SSL_ERROR_NONE : SSL_get_error(m_ssl.get(), rc);
        if (rc == 1) {
            m_established = true;
            if (!m_in.empty()) { // application data right behind the last handshake record
                read_records(*in);
            }
        } else if (err != SSL_ERROR_WANT_READ) {
            tls_error e = failure(tls_errc::handshake, "handshake", err);
            if (!m_hs_out.empty()) { // the alert telling the peer why, if it fits now
                (void)sys::try_send(sock->native_handle(), m_hs_out.view().data(), m_hs_out.size());
            }
            throw e;
        }
        m_in = {};
        chunk.data.reset();
        while (!m_hs_out.empty()) {
            io_result w = co_await sock->write_some(m_hs_out.view());
            if (!w) {
                m_failed = true;
                std::string reason = "send: " + w.message();
                throw tls_error(tls_errc::handshake, describe("handshake") + ": " + reason, reason,
                                m_peer);
            }
            m_hs_out.consume(w.bytes);
        }
        m_hs_out.release_if_empty(0);
        if (rc == 1) {
            co_return;
        }
        chunk = co_await sock->read_chunk();
        if (!chunk) {
            m_failed = true;
            if (chunk.status == io_status::error && chunk.error == std::errc::not_enough_memory) {
                // No memory for a read buffer here: not a TLS failure, and
                // reported as a plain stream's read reports it.
                throw net_error(chunk.error, describe("handshake"));
            }
            std::string reason = chunk.status == io_status::eof
                                     ? "the peer closed the connection during the handshake"
                                     : io_result{chunk.status, 0, chunk.error}.message();
            throw tls_error(tls_errc::handshake, describe("handshake") + ": " + reason, reason,
                            m_peer);
        }
        m_in = chunk.data.view();
    }
}

bool tls_engine::read_records(byte_buffer& in) {
    for (;;) {
        std::span<char> room = in.prepare(read_room);
        std::size_t n = 0;
        ERR_clear_error();
        const int rc = SSL_read_ex(m_ssl.get(), room.data(), room.size(), &n);
        if (rc == 1) {
            in.commit(n);
            if (m_in.empty() && SSL_has_pending(m_ssl.get()) == 0) {
                return false;
            }
            continue;
        }
        const int err = SSL_get_error(m_ssl.get(), rc);
        in.release_if_empty(0); // an idle reader keeps no buffer
        if (err == SSL_ERROR_WANT_READ) {
            return false; // the input is used up; a partial record waits in OpenSSL
        }
        if (err == SSL_ERROR_ZERO_RETURN) {
            m_got_close_notify = true;
            return true;
        }
        throw failure(tls_errc::protocol, "read", err);
    }
}

bool tls_engine::on_data(std::string_view bytes, byte_buffer& in, byte_buffer& out) {
    if (m_got_close_notify) {
        return true; // nothing counts after the close_notify
    }
    m_in = bytes;
    m_out = &out;
    struct reset_input {
        std::string_view& v;
        ~reset_input() { v = {}; } // the chunk is given back after this call
    } guard{m_in};
    return read_records(in);
}

void tls_engine::on_eof() noexcept {
    if (!m_got_close_notify) {
        m_truncated = true;
    }
}

std::error_code tls_engine::write(std::string_view data, byte_buffer& out) {
    if (m_failed) {
        return make_error_code(tls_errc::protocol);
    }
    if (!m_established) {
        m_pending.append(data);
        return {};
    }
    m_out = &out;
    // Room for all the records at once: growing the buffer record by record
    // would copy it again at each doubling.
    (void)out.prepare(data.size() + (data.size() / record_size + 1) * record_overhead);
    ERR_clear_error();
    std::size_t n = 0;
    if (SSL_write_ex(m_ssl.get(), data.data(), data.size(), &n) != 1) {
        m_failed = true;
        ERR_clear_error();
        return m_out_of_memory ? std::make_error_code(std::errc::not_enough_memory)
                               : make_error_code(tls_errc::protocol);
    }
    return {};
}

void tls_engine::write_eof(byte_buffer& out) noexcept {
    if (!m_established || m_failed || m_sent_close_notify) {
        return;
    }
    m_sent_close_notify = true;
    m_out = &out;
    ERR_clear_error();
    (void)SSL_shutdown(m_ssl.get()); // 0: sent, the peer's has not come; 1: both done
    ERR_clear_error();
}

std::optional<tls_info> tls_engine::info() const {
    if (!m_established) {
        return std::nullopt;
    }
    tls_info i = describe_session(m_ssl.get());
    i.close_notify_received = m_got_close_notify;
    i.truncated = m_truncated;
    return i;
}

int cache_new_session(SSL* ssl, SSL_SESSION* s) {
    auto* e = static_cast<tls_engine*>(SSL_get_app_data(ssl));
    if (e == nullptr || e->session_key().empty()) {
        return 0;
    }
    e->context().sessions.put(e->session_key(), s);
    return 1;
}

} // namespace coio::detail
