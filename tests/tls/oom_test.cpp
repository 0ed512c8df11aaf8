// tests/tls/oom_test.cpp - allocation failure anywhere in a TLS connection's
// life (RELIABILITY 3): the k-th allocation of a cycle fails, for every k
// (tests/support/oom_sweep.hpp says what must hold). The cycle: both
// contexts are made, a TLS server starts, a client connects and handshakes,
// sends a line, reads the echo, closes (close_notify both ways), the server
// closes. OpenSSL's own allocations (malloc) are not failed: coio's are.
#include "support/oom_sweep.hpp"
#include "tls/tls_support.hpp"

#include <coio/coio.hpp>

#include <string>

namespace {

coio::task<> tls_cycle() {
    coio::server srv = co_await coio::start_server(coio::test::echo_lines, "127.0.0.1", 0,
                                                   coio::test::server_context());
    bool lost = false;
    try {
        auto [r, w] = co_await coio::open_connection(coio::address::loopback_v4(srv.port()),
                                                     coio::test::client_context());
        w.write("hello\n");
        co_await w.drain();
        lost = co_await r.readline() != "hello\n";
        if (!lost) {
            w.close();
            co_await w.wait_closed();
            lost = !(co_await r.readline()).empty();
        }
        if (lost) {
            w.abort();
        }
    } catch (const coio::net_error& e) {
        if (e.code() == std::errc::not_enough_memory) {
            throw; // the client's own read found no memory for a buffer
        }
        lost = true; // the server's side failed (in the handshake too) and closed it
    }
    if (lost) {
        throw coio::test::connection_lost{};
    }
    srv.close();
    co_await srv.wait_closed();
}

} // namespace

TEST_CASE("an allocation failure anywhere in a TLS handshake, echo and close_notify cycle reaches "
          "the awaiting coroutine, leaks nothing and leaves the process working",
          "[tls]") {
    (void)coio::test::certs(); // made by the openssl command, before any child forks
    coio::test::sweep_allocations(tls_cycle);
}
