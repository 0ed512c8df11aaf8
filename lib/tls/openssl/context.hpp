// lib/tls/openssl/context.hpp - what a coio::tls_context holds: the SSL_CTX,
// the role and checks the sessions need, and a client's session cache.
#pragma once

#include <coio/net/tls.hpp>

#include <openssl/ssl.h>

#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

namespace coio::detail {

// Sessions a client got from servers, offered again on the next connection
// to the same server name and address (TLS 1.3 tickets, TLS 1.2 tickets or
// session ids). Bounded; shared by every loop using the context, so locked.
class tls_session_cache {
public:
    tls_session_cache() = default;
    tls_session_cache(const tls_session_cache&) = delete;
    tls_session_cache& operator=(const tls_session_cache&) = delete;
    ~tls_session_cache();

    // Takes over `s` (one reference), replacing what `key` had.
    void put(const std::string& key, SSL_SESSION* s) noexcept;
    // A new reference to key's session, or null.
    SSL_SESSION* get(const std::string& key) noexcept;

private:
    struct entry {
        SSL_SESSION* session = nullptr;
        std::uint64_t stamp = 0; // insertion order: the oldest goes when full
    };
    static constexpr std::size_t max_entries = 256;
    std::mutex m_mutex;
    std::unordered_map<std::string, entry> m_map;
    std::uint64_t m_next = 0;
};

struct ssl_ctx_deleter {
    void operator()(SSL_CTX* c) const noexcept { SSL_CTX_free(c); }
};

struct tls_context_impl {
    std::unique_ptr<SSL_CTX, ssl_ctx_deleter> ctx;
    bool server = false;
    bool verify = true;         // client: verify the server's chain
    bool check_hostname = true; // client: and its name
    bool resume = true;         // client: use the cache
    std::string alpn_wire;      // server: its ALPN preference, in wire format
    tls_session_cache sessions;
};

} // namespace coio::detail
