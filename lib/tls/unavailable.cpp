// lib/tls/unavailable.cpp - the TLS entry points of a build without OpenSSL:
// each throws tls_error (unavailable), so a program that asks for TLS learns
// why at its first call instead of at link time.
#include "net/stream_transport.hpp"

#include <coio/net/tls.hpp>

namespace coio {

namespace {
[[noreturn]] void unavailable(const char* what) {
    throw tls_error(tls_errc::unavailable,
                    std::string(what) +
                        ": coio was built without TLS (OpenSSL 3 not found; meson option tls)",
                    "coio was built without TLS");
}
} // namespace

tls_context tls_context::client(tls_context_options) {
    unavailable("tls_context::client");
}

tls_context tls_context::client() {
    unavailable("tls_context::client");
}

tls_context tls_context::server(tls_context_options) {
    unavailable("tls_context::server");
}

bool tls_context::is_server() const noexcept {
    return false;
}

namespace detail {
std::unique_ptr<stream_transport> make_tls_transport(const tls_context&, const tls_options&,
                                                     const address&) {
    unavailable("start_tls");
}
} // namespace detail

} // namespace coio
