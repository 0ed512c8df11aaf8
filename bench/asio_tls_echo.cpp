// asio_tls_echo — the TLS reference of the bench (issue 12, item 8): Boost.Asio's
// ssl::stream<tcp::socket> with C++20 coroutines, asio_echo.cpp's shape (co_spawn a
// listener, one `echo` coroutine per connection: async_handshake, then async_read_some /
// async_write with use_awaitable and a 4 KiB buffer in the frame), on one thread with one
// io_context, over the same OpenSSL as coio. Built only when Boost headers are found
// (meson feature bench_asio); coio itself never uses Boost.
//
// Contract: server_common.hpp's (--port P on 127.0.0.1, --cpu C, "listening on
// 127.0.0.1:PORT", SIGINT/SIGTERM exit 0) and tls_server_options.hpp's TLS options
// (--tls-cert, --tls-key required; TLS 1.3 and TLS_AES_128_GCM_SHA256 by default).
//
// The SSL_CTX gets exactly the settings coio's server context makes (lib/tls/openssl/
// context.cpp): the pinned version and suites, SSL_OP_NO_RENEGOTIATION |
// SSL_OP_NO_COMPRESSION | SSL_OP_CIPHER_SERVER_PREFERENCE, SSL_MODE_RELEASE_BUFFERS, a
// session id context, session tickets on (OpenSSL's default). So the two servers differ
// in their stream layer, not in OpenSSL's configuration. When the client's close_notify
// arrives, the server answers with its own (async_shutdown), as coio's close() does.
// Nothing is logged per connection or request.
//
// Run:   ./asio_tls_echo --tls-cert cert.pem --tls-key key.pem [--port 0] [--cpu 0]
// Try:   ./loadgen --port PORT --tls --connections 100 --duration 2
#include "tls_server_options.hpp"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>
#include <cstdio>
#include <exception>

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(ssl::stream<tcp::socket> s) {
    boost::system::error_code ec;
    co_await s.async_handshake(ssl::stream_base::server,
                               asio::redirect_error(asio::use_awaitable, ec));
    if (ec) {
        co_return;
    }
    std::array<char, 4096> buf;
    for (;;) {
        std::size_t n = co_await s.async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            break; // close_notify (eof), reset, broken session: the client is gone
        }
        co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return;
        }
    }
    if (ec == asio::error::eof) {
        co_await s.async_shutdown(asio::redirect_error(asio::use_awaitable, ec));
    }
}

asio::awaitable<void> listen(tcp::acceptor acceptor, ssl::context& tls) {
    boost::system::error_code ec;
    for (;;) {
        tcp::socket s =
            co_await acceptor.async_accept(asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            if (ec == asio::error::operation_aborted) {
                co_return;
            }
            continue; // EMFILE and friends: keep serving (asio retries on the next turn)
        }
        s.set_option(tcp::no_delay(true), ec);
        asio::co_spawn(acceptor.get_executor(), echo(ssl::stream<tcp::socket>(std::move(s), tls)),
                       asio::detached);
    }
}

// Exits 1 naming the setting and OpenSSL's reason.
void check(bool ok, const char* what) {
    if (!ok) {
        char reason[256] = "unknown";
        ERR_error_string_n(ERR_get_error(), reason, sizeof reason);
        std::fprintf(stderr, "asio_tls_echo: %s: %s\n", what, reason);
        std::exit(1);
    }
}

void configure(ssl::context& tls, const bench::tls_server_options& t) {
    SSL_CTX* ctx = tls.native_handle();
    const int version = t.version == 12 ? TLS1_2_VERSION : TLS1_3_VERSION;
    check(SSL_CTX_set_min_proto_version(ctx, version) == 1 &&
              SSL_CTX_set_max_proto_version(ctx, version) == 1,
          "protocol version");
    check(t.ciphersuites.empty() || SSL_CTX_set_ciphersuites(ctx, t.ciphersuites.c_str()) == 1,
          "ciphersuites");
    check(t.ciphers.empty() || SSL_CTX_set_cipher_list(ctx, t.ciphers.c_str()) == 1, "ciphers");
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    static const unsigned char sid_ctx[] = "bench";
    SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
    boost::system::error_code ec;
    tls.use_certificate_chain_file(t.cert_file, ec);
    check(!ec, ("certificate chain " + t.cert_file).c_str());
    tls.use_private_key_file(t.key_file, ssl::context::pem, ec);
    check(!ec, ("private key " + t.key_file).c_str());
}

} // namespace

int main(int argc, char** argv) {
    bench::tls_server_options t;
    bench::server_options opts = bench::parse_tls_server_options(argc, argv, t);
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    signal(SIGPIPE, SIG_IGN);
    ssl::context tls(ssl::context::tls_server);
    configure(tls, t);
    asio::io_context ctx(1); // concurrency hint 1: one thread, no locking
    int fd = bench::open_listener(opts.port, true);
    tcp::acceptor acceptor(ctx, tcp::v4(), fd);
    asio::signal_set stop(ctx, SIGINT, SIGTERM);
    stop.async_wait([&ctx](const boost::system::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, listen(std::move(acceptor), tls), asio::detached);
    ctx.run();
    return 0;
}
