// coio_tls_echo — the coio TLS echo server the TLS bench points measure (issue 12, item 8):
// start_server with a server tls_context, one (stream_reader, stream_writer) handler per
// connection that echoes whatever arrives: read(4096) (what is buffered, else one read's
// worth, up to 4 KiB - the policy of asio_tls_echo's 4 KiB buffer), write, drain.
//
// Same contract as the other bench servers (server_common.hpp): --port P (127.0.0.1 only),
// --cpu C, first stdout line "listening on 127.0.0.1:PORT", SIGINT/SIGTERM exit 0; plus
// the TLS options of tls_server_options.hpp (--tls-cert, --tls-key required; TLS 1.3 and
// TLS_AES_128_GCM_SHA256 by default) and --list-backends (the backends that can run here).
// Otherwise coio's defaults: session tickets issued, SSL_MODE_RELEASE_BUFFERS.
// COIO_BACKEND=epoll|io_uring picks the backend. Nothing is logged per request or per
// connection: a peer that resets or breaks its session ends its handler quietly; a
// failed handshake goes to the loop's exception handler (stderr), which a bench run
// never causes.
//
// Run:   COIO_BACKEND=epoll ./coio_tls_echo --tls-cert cert.pem --tls-key key.pem --cpu 0
// Try:   ./loadgen --port PORT --tls --tls-ca cert.pem --connections 100 --duration 2
#include "tls_server_options.hpp"

#include <coio/coio.hpp>

#include <exception>
#include <string>

namespace {

constexpr std::ptrdiff_t k_read_size = 4096;

coio::task<> echo(coio::stream_reader reader, coio::stream_writer writer) {
    try {
        for (;;) {
            std::string data = co_await reader.read(k_read_size);
            if (data.empty()) {
                break; // close_notify, or EOF
            }
            writer.write(data);
            co_await writer.drain();
        }
    } catch (const coio::net_error&) {
        // reset, broken session: the client is gone (tls_error is a net_error too)
    }
    writer.close();
}

coio::task<int> serve(coio::tls_context ctx, std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    coio::server_options so;
    so.backlog = 65535; // as open_listener gives the other bench servers
    coio::server srv = co_await coio::start_server(echo, "127.0.0.1", port, std::move(ctx), so);
    std::printf("listening on %s (backend %s, TLS)\n", srv.local_address().to_string().c_str(),
                coio::backend_name().c_str());
    std::fflush(stdout);
    co_await stop.wait();
    srv.close();
    co_return 0; // coio::run cancels the connections still open, which closes them
}

} // namespace

int main(int argc, char** argv) {
    bench::tls_server_options t;
    auto list_backends = [](std::string_view arg) {
        if (arg != "--list-backends") {
            return false;
        }
        for (const std::string& b : coio::available_backends()) {
            std::printf("%s\n", b.c_str());
        }
        std::exit(0);
    };
    bench::server_options opts = bench::parse_tls_server_options(argc, argv, t, list_backends);
    coio::tls_context_options tls;
    tls.cert_file = t.cert_file;
    tls.key_file = t.key_file;
    tls.min_version = tls.max_version =
        t.version == 12 ? coio::tls_version::tls1_2 : coio::tls_version::tls1_3;
    tls.ciphersuites = t.ciphersuites;
    tls.ciphers = t.ciphers;
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    try {
        coio::tls_context ctx = coio::tls_context::server(tls);
        return coio::run(serve(std::move(ctx), opts.port));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coio_tls_echo: %s\n", e.what());
        return 1;
    }
}
