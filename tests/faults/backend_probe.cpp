// tests/faults/backend_probe.cpp - a small coio program for no_uring_check.py:
// it runs one echo round trip over loopback on the backend the loop picks
// (COIO_BACKEND, else automatic selection) and prints
//   "backend <name>: echo ok"                  exit 0
// or the exception that stopped it            exit 1
#include <coio/coio.hpp>

#include <cstdio>
#include <exception>
#include <string>

namespace {

coio::task<> echo_once(coio::socket s) {
    char buf[64];
    coio::io_result r = co_await s.read_some(std::span(buf));
    if (r) {
        co_await s.write_all(std::string_view(buf, r.bytes));
    }
}

coio::task<std::string> probe() {
    coio::server srv = co_await coio::start_server(echo_once, "127.0.0.1", 0);
    coio::socket c = co_await coio::connect(srv.local_address());
    coio::io_result w = co_await c.write_all("ping");
    char buf[4] = {};
    std::size_t got = 0;
    while (w && got < sizeof buf) {
        coio::io_result r = co_await c.read_some(std::span(buf + got, sizeof buf - got));
        if (!r) {
            break;
        }
        got += r.bytes;
    }
    c.close();
    srv.close();
    co_await srv.wait_closed();
    co_return std::string(buf, got);
}

} // namespace

int main() {
    try {
        coio::event_loop loop;
        const std::string name(loop.backend_name());
        const std::string echoed = loop.run_until_complete(probe());
        std::printf("backend %s: echo %s\n", name.c_str(), echoed == "ping" ? "ok" : "WRONG");
        return echoed == "ping" ? 0 : 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "backend_probe: %s\n", e.what());
        return 1;
    }
}
