// loadgen_tls_none.cpp — loadgen_tls.hpp for a build without OpenSSL 3: --tls says so and
// exits 2; the plain load generator is unchanged. (bench/meson.build picks this file or
// loadgen_tls.cpp.)
#include "loadgen_tls.hpp"

#include <cerrno>
#include <cstdio>
#include <cstdlib>

namespace bench {

tls_client::tls_client(const loadgen_options& /*opts*/) {
    std::fprintf(stderr, "loadgen: --tls: this loadgen was built without OpenSSL 3 "
                         "(libssl-dev was not found at configure time)\n");
    std::exit(2);
}
tls_client::~tls_client() {
    // Nothing was made; the fields are the OpenSSL build's (clang: not unused here either).
    (void)m_ctx;
    (void)m_session;
    (void)m_resume;
}
SSL* tls_client::start(int /*fd*/) {
    return nullptr;
}
void tls_client::keep_session(SSL* /*ssl*/) {}
void tls_client::finish(SSL* /*ssl*/, bool /*notify*/) {}

int tls_handshake(SSL* /*ssl*/, std::string& error) {
    error = "no TLS in this build";
    errno = ENOTSUP;
    return -1;
}
ssize_t tls_send(SSL* ssl, const void* /*data*/, std::size_t /*len*/, std::string& error) {
    return tls_handshake(ssl, error);
}
ssize_t tls_recv(SSL* ssl, void* /*data*/, std::size_t /*len*/, std::string& error) {
    return tls_handshake(ssl, error);
}

} // namespace bench
