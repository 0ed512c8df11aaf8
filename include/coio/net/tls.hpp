// coio/net/tls.hpp - TLS for streams (asyncio's ssl= and start_tls).
//
//   coio::tls_context ctx = coio::tls_context::client({.ca_file = "ca.pem"});
//   auto [reader, writer] = co_await coio::open_connection("example.com", 443, ctx);
//
//   coio::tls_context srv_ctx = coio::tls_context::server({.cert_file = "cert.pem",
//                                                          .key_file = "key.pem"});
//   coio::server srv = co_await coio::start_server(handler, "0.0.0.0", 443, srv_ctx);
//
//   co_await writer.start_tls(ctx, {.server_hostname = "mail.example.com"}); // STARTTLS
//
// The encrypted connection is the same stream_reader / stream_writer as a
// plain one (same limits, readline, drain water marks). TLS sits between the
// stream and its socket (docs/tls.md): ciphertext is read with the loop's
// lent buffers (socket::read_chunk) and decrypted into the reader's own
// buffer, plaintext written is encrypted into the writer's buffer, so an idle
// TLS connection holds no read or write buffer.
//
// coio uses OpenSSL 3 when it was found at build time (meson option `tls`);
// no OpenSSL type appears here. tls_available() says whether it was built in;
// if not, creating a tls_context throws tls_error (tls_errc::unavailable).
#pragma once

#include <coio/net/error.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <system_error>
#include <vector>

namespace coio {

// True if this build of coio has TLS (OpenSSL 3 was found).
[[nodiscard]] bool tls_available() noexcept;

// What failed, as the error_code of a tls_error.
enum class tls_errc {
    unavailable = 1,   // coio was built without TLS
    config,            // a tls_context option or file could not be used
    handshake,         // the handshake failed (protocol, alert, peer closed)
    verify,            // the peer's certificate or host name did not verify
    handshake_timeout, // no handshake within tls_options::handshake_timeout
    protocol,          // an established session failed (bad record, alert)
};

[[nodiscard]] const std::error_category& tls_category() noexcept;
[[nodiscard]] inline std::error_code make_error_code(tls_errc e) noexcept {
    return {static_cast<int>(e), tls_category()};
}

// A TLS failure. A net_error, so code that handles connection failures
// handles these too. what() is one line naming the operation, the peer and
// OpenSSL's reason, e.g.
//   "TLS handshake with 127.0.0.1:443 (example.com): certificate verify failed: certificate has
//   expired" "TLS handshake from 127.0.0.1:40522: wrong version number" "tls_context: certificate
//   chain /etc/x.pem: No such file or directory"
class tls_error : public net_error {
public:
    tls_error(tls_errc code, std::string what, std::string reason, std::string peer = {},
              std::string file = {});
    [[nodiscard]] const char* what() const noexcept override { return m_what.c_str(); }
    // OpenSSL's reason string (or coio's, e.g. "timed out after 60 s").
    [[nodiscard]] const std::string& reason() const noexcept { return m_reason; }
    // The peer's address (and server name), empty for context errors.
    [[nodiscard]] const std::string& peer() const noexcept { return m_peer; }
    // The file a context option named, for errors loading it.
    [[nodiscard]] const std::string& file() const noexcept { return m_file; }

private:
    std::string m_what;
    std::string m_reason;
    std::string m_peer;
    std::string m_file;
};

enum class tls_version : unsigned char { tls1_2, tls1_3 };

// Whether a server asks clients for a certificate.
enum class tls_client_auth : unsigned char {
    none,     // don't ask (default)
    optional, // ask; verify one if sent (against ca_*), accept clients without
    required, // ask, verify, and fail the handshake without one
};

// How a tls_context is set up. Files are PEM; each file option has an
// in-memory twin (*_pem) holding the PEM text itself.
struct tls_context_options {
    // This side's certificate chain (leaf first) and its private key.
    // Required for a server; a client may give one for client authentication.
    std::string cert_file{};
    std::string cert_pem{};
    std::string key_file{};
    std::string key_pem{};
    // Trusted CA certificates for verifying the peer: a PEM file (several
    // certificates may follow each other), an OpenSSL hashed directory
    // (c_rehash), PEM text. A client given none of them uses the system's
    // default store.
    std::string ca_file{};
    std::string ca_dir{};
    std::string ca_pem{};
    // Client: verify the server's certificate chain (on by default; false
    // must be spelled out and turns the host name check off too).
    bool verify = true;
    // Client: check the certificate names the server (tls_options::
    // server_hostname: a DNS name, or an IP address against IP SANs).
    bool check_hostname = true;
    // Server: ask clients for a certificate.
    tls_client_auth client_auth = tls_client_auth::none;
    // ALPN protocol names in preference order ("h2", "http/1.1"). A client
    // offers them; a server picks the first of its list the client offers,
    // and negotiates none if nothing matches (the handshake goes on).
    std::vector<std::string> alpn{};
    tls_version min_version = tls_version::tls1_2;
    tls_version max_version = tls_version::tls1_3;
    // OpenSSL cipher strings: TLS 1.2 cipher list, TLS 1.3 cipher suites
    // ("TLS_AES_128_GCM_SHA256"). Empty keeps OpenSSL's defaults.
    std::string ciphers{};
    std::string ciphersuites{};
    // Server: issue session tickets. Client: keep the sessions servers give
    // (per server name and address) and offer them on the next connection.
    bool session_resumption = true;
};

namespace detail {
struct tls_context_impl;
}

// OpenSSL's SSL_CTX: certificates, trust, protocol settings, session cache.
// Cheap to copy (copies share one context) and usable from several loops and
// threads at once. An empty (default-constructed) context is not usable.
class tls_context {
public:
    explicit tls_context() noexcept = default; // explicit: `{}` picks stream_options in overloads
    // Throw tls_error (config) naming the file and OpenSSL's reason when an
    // option cannot be used, or (unavailable) when built without TLS; a
    // server without a certificate and key throws std::invalid_argument.
    [[nodiscard]] static tls_context client(tls_context_options opts);
    [[nodiscard]] static tls_context server(tls_context_options opts);
    // A client with the defaults: the system's CAs, verification on. (An
    // overload rather than a default argument: see tls_options on g++ 12.)
    [[nodiscard]] static tls_context client();

    [[nodiscard]] explicit operator bool() const noexcept { return m_impl != nullptr; }
    [[nodiscard]] bool is_server() const noexcept;

    // (detail)
    explicit tls_context(std::shared_ptr<detail::tls_context_impl> impl) noexcept
        : m_impl(std::move(impl)) {}
    [[nodiscard]] const std::shared_ptr<detail::tls_context_impl>& impl() const noexcept {
        return m_impl;
    }

private:
    std::shared_ptr<detail::tls_context_impl> m_impl;
};

// Per connection (asyncio's server_hostname, ssl_handshake_timeout,
// ssl_shutdown_timeout). The functions taking one have an overload without
// it rather than a default argument, and a designated-initializer temporary
// should be a named variable when the call is co_awaited: g++ 12 destroys a
// brace-initialised aggregate with a non-trivial destructor (this one holds a
// string) twice when it is built in a co_await's full-expression
// (docs/design.md, "g++ 12 and temporaries").
//   coio::tls_options o{.server_hostname = "example.com"};
//   auto [r, w] = co_await coio::open_connection(addr, ctx, o);
struct tls_options {
    // Client: the name sent as SNI and checked against the certificate.
    // open_connection(host, ...) defaults it to host; otherwise the peer's IP
    // address is checked (against the certificate's IP SANs). Ignored by
    // servers.
    std::string server_hostname{};
    // The handshake must complete within this, or it fails with
    // tls_errc::handshake_timeout and the connection is closed.
    std::chrono::milliseconds handshake_timeout{60'000};
    // close(): how long sending what is buffered and the close_notify may
    // take before the connection is closed anyway (a peer that does not read).
    std::chrono::milliseconds shutdown_timeout{30'000};
};

// The peer's (leaf) certificate.
struct tls_certificate_info {
    std::string subject{}; // RFC 2253, e.g. "CN=localhost,O=Example"
    std::string issuer{};
    std::vector<std::string> dns_names{};    // subjectAltName DNS entries
    std::vector<std::string> ip_addresses{}; // subjectAltName IP entries, as text
    std::string serial{};                    // hex
    std::string sha256_fingerprint{};        // hex, lower case, no separators
    std::chrono::system_clock::time_point not_before{};
    std::chrono::system_clock::time_point not_after{};
};

// A TLS connection's negotiated parameters (stream_writer::tls()).
struct tls_info {
    std::string version{};     // "TLSv1.3"
    std::string cipher{};      // "TLS_AES_128_GCM_SHA256"
    std::string alpn{};        // negotiated ALPN protocol, empty if none
    std::string server_name{}; // SNI: sent (client) or received (server)
    bool session_reused = false;
    // The peer presented a certificate and it verified (always true for a
    // client with verify on; a server sees client certificates only with
    // client_auth).
    bool peer_verified = false;
    std::optional<tls_certificate_info> peer_certificate{};
    // The peer's close_notify arrived: its data ended cleanly.
    bool close_notify_received = false;
    // The connection ended (TCP EOF) without the peer's close_notify. The
    // reader reports that as an ordinary EOF, as asyncio does; a protocol
    // that relies on the end of the stream to delimit data checks this.
    bool truncated = false;
};

} // namespace coio

template <>
struct std::is_error_code_enum<coio::tls_errc> : std::true_type {};
