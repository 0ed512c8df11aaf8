// tcp_proxy - forwards each connection to a target address, both ways.
//
// What it shows: a raw-socket handler, coio::connect by name, and
// copy_bidirectional - a client's half-close reaches the target as a
// half-close, a reset as a reset, and a pair silent for --idle-timeout
// seconds is reset on both sides. Ctrl-C (SIGINT/SIGTERM) stops accepting,
// closes every proxied connection (server.close_clients) and exits 0.
//
// Run:  ./build/examples/tcp_proxy --listen 0 --target 127.0.0.1:9000 [--idle-timeout 60]
// Try:  ./build/examples/echo_server, then nc 127.0.0.1 PROXY_PORT and type lines.
#include <coio/coio.hpp>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

using namespace std::chrono_literals;

namespace {

// tag::proxy[]
struct proxy {
    std::string host;
    std::uint16_t port;
    std::chrono::seconds idle;

    coio::task<> operator()(coio::socket client) const {
        const coio::address from = client.peer_address();
        coio::socket upstream;
        try {
            upstream = co_await coio::connect(host, port);
        } catch (const coio::net_error& e) {
            std::printf("%s: %s\n", from.to_string().c_str(), e.what());
            client.abort(); // the client sees a reset, as if the target had refused it
            co_return;
        }
        const coio::copy_options opts{.idle_timeout = idle};
        coio::copy_result r =
            co_await coio::copy_bidirectional(std::move(client), std::move(upstream), opts);
        std::printf("%s: %llu bytes up, %llu down%s\n", from.to_string().c_str(),
                    static_cast<unsigned long long>(r.a_to_b),
                    static_cast<unsigned long long>(r.b_to_a),
                    r.timed_out ? ", idle timeout"
                    : r.reset   ? ", reset"
                                : "");
        std::fflush(stdout);
    }
};
// end::proxy[]

coio::task<int> run_proxy(std::uint16_t listen_port, proxy p) {
    coio::signal_set stop{SIGINT, SIGTERM};
    coio::server srv = co_await coio::start_server(p, "127.0.0.1", listen_port);
    std::printf("listening on %s, forwarding to %s:%u\n", srv.local_address().to_string().c_str(),
                p.host.c_str(), p.port);
    std::fflush(stdout);
    co_await stop.wait();
    srv.close();
    srv.close_clients();
    co_await coio::wait_for(srv.wait_closed(), 5s);
    std::printf("bye\n");
    co_return 0;
}

int usage(const char* argv0) {
    std::fprintf(stderr, "usage: %s --listen PORT --target HOST:PORT [--idle-timeout SECONDS]\n",
                 argv0);
    return 2;
}

} // namespace

int main(int argc, char** argv) {
    unsigned long listen_port = 0;
    std::string target;
    long idle = 60;
    for (int i = 1; i + 1 < argc; i += 2) {
        if (std::strcmp(argv[i], "--listen") == 0) {
            listen_port = std::strtoul(argv[i + 1], nullptr, 10);
        } else if (std::strcmp(argv[i], "--target") == 0) {
            target = argv[i + 1];
        } else if (std::strcmp(argv[i], "--idle-timeout") == 0) {
            idle = std::strtol(argv[i + 1], nullptr, 10);
        } else {
            return usage(argv[0]);
        }
    }
    const std::size_t colon = target.rfind(':');
    if (argc % 2 == 0 || colon == std::string::npos || listen_port > 65535 || idle < 0) {
        return usage(argv[0]);
    }
    std::string host = target.substr(0, colon);
    if (host.size() > 2 && host.front() == '[' && host.back() == ']') {
        host = host.substr(1, host.size() - 2); // [::1]:80
    }
    const auto target_port =
        static_cast<std::uint16_t>(std::strtoul(target.c_str() + colon + 1, nullptr, 10));
    try {
        proxy p{host, target_port, std::chrono::seconds(idle)};
        return coio::run(run_proxy(static_cast<std::uint16_t>(listen_port), p));
    } catch (const std::exception& e) {
        std::fprintf(stderr, "tcp_proxy: %s\n", e.what());
        return 1;
    }
}
