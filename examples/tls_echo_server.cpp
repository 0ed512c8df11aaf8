// tls_echo_server - a line echo server over TLS (asyncio's start_server with
// ssl=).
//
// What it shows: a tls_context from a certificate and key, start_server with
// it, a handler that sees the negotiated parameters (writer.tls()), and that
// a failed handshake (plaintext, garbage, a client that rejects the
// certificate) is reported by the loop's exception handler without reaching
// the handler or stopping the server. Ctrl-C (SIGINT) or SIGTERM stops it.
// Needs a build with TLS (OpenSSL 3; meson option tls).
//
// Run:  ./build/examples/tls_echo_server --cert cert.pem --key key.pem [--port 0] [--alpn h2,x]
// Try:  a certificate for the test (one command):
//         openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes
//           -keyout key.pem -out cert.pem -days 30 -subj /CN=localhost
//           -addext subjectAltName=DNS:localhost,IP:127.0.0.1
//       openssl s_client -connect 127.0.0.1:PORT -CAfile cert.pem -servername localhost -quiet
//       (type lines; they come back), or
//       python3 -c 'import socket,ssl; c=ssl.create_default_context(cafile="cert.pem");
//       s=c.wrap_socket(socket.create_connection(("127.0.0.1",PORT)),server_hostname="localhost");
//       s.sendall(b"hi\n"); print(s.recv(100))'
#include <coio/coio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

namespace {

// tag::handler[]
coio::task<> echo_lines(coio::stream_reader reader, coio::stream_writer writer) {
    coio::tls_info tls = writer.tls().value(); // the handshake is done before the handler runs
    std::printf("%s: %s %s%s%s\n", writer.peer_address().to_string().c_str(), tls.version.c_str(),
                tls.cipher.c_str(), tls.alpn.empty() ? "" : " alpn ", tls.alpn.c_str());
    for (;;) {
        std::string line = co_await reader.readline();
        if (line.empty()) {
            break; // EOF: the close_notify, or writer.tls()->truncated if the peer just left
        }
        writer.write(line);
        co_await writer.drain();
    }
    writer.close(); // close_notify, then the TCP close
    co_await writer.wait_closed();
}
// end::handler[]

coio::task<int> serve(coio::tls_context ctx, std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    coio::server srv = co_await coio::start_server(echo_lines, "127.0.0.1", port, std::move(ctx));
    std::printf("listening on %s (TLS)\n", srv.local_address().to_string().c_str());
    std::fflush(stdout);
    co_await stop.wait();
    srv.close();
    std::printf("bye\n");
    co_return 0;
}

std::vector<std::string> split(const std::string& s) {
    std::vector<std::string> out;
    std::size_t from = 0;
    while (from <= s.size()) {
        const std::size_t comma = std::min(s.find(',', from), s.size());
        if (comma > from) {
            out.push_back(s.substr(from, comma - from));
        }
        from = comma + 1;
    }
    return out;
}

} // namespace

int main(int argc, char** argv) {
    coio::tls_context_options opts;
    unsigned long port = 0;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--cert") == 0) {
            opts.cert_file = argv[i + 1];
        } else if (std::strcmp(argv[i], "--key") == 0) {
            opts.key_file = argv[i + 1];
        } else if (std::strcmp(argv[i], "--port") == 0) {
            port = std::strtoul(argv[i + 1], nullptr, 10);
        } else if (std::strcmp(argv[i], "--alpn") == 0) {
            opts.alpn = split(argv[i + 1]);
        } else {
            argc = 0; // usage
        }
    }
    if (argc % 2 == 0 || opts.cert_file.empty() || opts.key_file.empty()) {
        std::fprintf(stderr, "usage: %s --cert FILE --key FILE [--port N] [--alpn P1,P2]\n",
                     argv[0]);
        return 2;
    }
    try {
        coio::tls_context ctx = coio::tls_context::server(opts);
        return coio::run(serve(std::move(ctx), static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tls_echo_server: %s\n", e.what());
        return 1;
    }
}
