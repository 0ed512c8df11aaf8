// lib/tls/tls_error.cpp - tls_error, its category and tls_available(); built
// with or without OpenSSL.
#include <coio/net/tls.hpp>

#include <string>

namespace coio {

bool tls_available() noexcept {
#ifdef COIO_HAVE_TLS
    return true;
#else
    return false;
#endif
}

namespace {

class tls_category_impl final : public std::error_category {
public:
    [[nodiscard]] const char* name() const noexcept override { return "coio.tls"; }
    [[nodiscard]] std::string message(int c) const override {
        switch (static_cast<tls_errc>(c)) {
        case tls_errc::unavailable:
            return "TLS is not available (coio was built without OpenSSL)";
        case tls_errc::config:
            return "TLS configuration error";
        case tls_errc::handshake:
            return "TLS handshake failed";
        case tls_errc::verify:
            return "TLS certificate verification failed";
        case tls_errc::handshake_timeout:
            return "TLS handshake timed out";
        case tls_errc::protocol:
            return "TLS protocol error";
        }
        return "TLS error " + std::to_string(c);
    }
};

} // namespace

const std::error_category& tls_category() noexcept {
    static const tls_category_impl c;
    return c;
}

tls_error::tls_error(tls_errc code, std::string what, std::string reason, std::string peer,
                     std::string file)
    : net_error(make_error_code(code), what), m_what(std::move(what)), m_reason(std::move(reason)),
      m_peer(std::move(peer)), m_file(std::move(file)) {}

} // namespace coio
