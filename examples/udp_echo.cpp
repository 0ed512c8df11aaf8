// udp_echo - a UDP echo server (asyncio's create_datagram_endpoint).
//
// What it shows: open_datagram_endpoint, receive_from / send_to with the
// sender's address, the `truncated` flag for a datagram longer than the
// buffer, and a clean stop: Ctrl-C (SIGINT) or SIGTERM closes the socket,
// which completes the pending receive with io_status::cancelled.
//
// Needs: nothing beyond coio (any backend; COIO_BACKEND=epoll to choose).
// Run:  ./build/examples/udp_echo [--port 0]
// Try:  nc -u 127.0.0.1 PORT   (each line you type is one datagram; it comes back)
//       python3 -c 'import socket; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM);
//                   s.sendto(b"hi", ("127.0.0.1", PORT)); print(s.recvfrom(100))'
#include <coio/coio.hpp>

#include <array>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>

namespace {

coio::task<> echo(coio::datagram_socket* sock) {
    std::array<char, 2048> buf;
    for (;;) {
        coio::datagram_result r = co_await sock->receive_from(buf);
        if (r.status == coio::io_status::cancelled) {
            co_return; // the socket was closed: we are shutting down
        }
        if (!r) {
            // e.g. refused: an ICMP error for an earlier reply; go on serving
            std::printf("receive: %s\n", r.error.message().c_str());
            continue;
        }
        std::printf("%zu bytes from %s%s\n", r.bytes, r.peer.to_string().c_str(),
                    r.truncated ? " (truncated to the buffer)" : "");
        std::fflush(stdout);
        co_await sock->send_to(std::string_view(buf.data(), r.bytes), r.peer);
    }
}

coio::task<int> serve(std::uint16_t port) {
    coio::signal_set stop{SIGINT, SIGTERM};
    coio::datagram_socket sock = co_await coio::open_datagram_endpoint("127.0.0.1", port);
    std::printf("udp echo on %s (backend %s)\n", sock.local_address().to_string().c_str(),
                coio::backend_name().c_str());
    std::fflush(stdout);
    coio::task_handle<> server = coio::create_task(echo(&sock), "udp echo");
    int sig = co_await stop.wait();
    std::printf("got %s: closing\n", sig == SIGINT ? "SIGINT" : "SIGTERM");
    sock.close(); // the pending receive completes with io_status::cancelled
    co_await server;
    co_return 0;
}

} // namespace

int main(int argc, char** argv) {
    unsigned long port = 0;
    if (argc == 3 && std::strcmp(argv[1], "--port") == 0) {
        port = std::strtoul(argv[2], nullptr, 10);
    } else if (argc != 1) {
        std::fprintf(stderr, "usage: %s [--port N]\n", argv[0]);
        return 2;
    }
    try {
        return coio::run(serve(static_cast<std::uint16_t>(port)));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "udp_echo: %s\n", e.what());
        return 1;
    }
}
