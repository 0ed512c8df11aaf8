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
    co_await coio::test::client_exchange(
        coio::open_connection(coio::address::loopback_v4(srv.port()), coio::test::client_context()),
        "hello\n");
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
