// asio_echo — the best-known C++ peer: Boost.Asio's C++20-coroutine echo server, the shape
// of asio's src/examples/cpp20/coroutines/echo_server.cpp (co_spawn a listener, co_spawn one
// `echo(tcp::socket)` coroutine per connection, async_read_some / async_write with
// use_awaitable), on one thread with one io_context. Built only when Boost headers are
// found (meson feature bench_asio); coio itself never uses Boost.
//
// Same contract as the other servers in bench/ (server_common.hpp): --port P (127.0.0.1
// only), --cpu C, prints "listening on 127.0.0.1:PORT", SIGINT/SIGTERM exit 0. The handler
// keeps a 4 KiB buffer in its frame like examples/echo_server.cpp, so the two compare like
// for like.
//
// Run:   ./asio_echo [--port 0] [--cpu 0]
// Try:   ./loadgen --port PORT --connections 100 --duration 2
#include "server_common.hpp"

// Boost 1.74's awaitable.hpp uses std::exchange without including <utility>.
#include <utility>

#include <boost/asio/awaitable.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>

#include <array>

namespace asio = boost::asio;
using asio::ip::tcp;

namespace {

asio::awaitable<void> echo(tcp::socket s) {
    std::array<char, 4096> buf;
    boost::system::error_code ec;
    for (;;) {
        std::size_t n = co_await s.async_read_some(asio::buffer(buf),
                                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return; // eof, reset: the client is gone
        }
        co_await asio::async_write(s, asio::buffer(buf.data(), n),
                                   asio::redirect_error(asio::use_awaitable, ec));
        if (ec) {
            co_return;
        }
    }
}

asio::awaitable<void> listen(tcp::acceptor acceptor) {
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
        asio::co_spawn(acceptor.get_executor(), echo(std::move(s)), asio::detached);
    }
}

} // namespace

int main(int argc, char** argv) {
    bench::server_options opts = bench::parse_server_options(argc, argv);
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    signal(SIGPIPE, SIG_IGN);
    asio::io_context ctx(1); // concurrency hint 1: one thread, no locking
    // The listening socket comes from the shared helper (127.0.0.1, big backlog, the
    // announce line); asio adopts the fd.
    int fd = bench::open_listener(opts.port, true);
    tcp::acceptor acceptor(ctx, tcp::v4(), fd);
    asio::signal_set stop(ctx, SIGINT, SIGTERM);
    stop.async_wait([&ctx](const boost::system::error_code&, int) { ctx.stop(); });
    asio::co_spawn(ctx, listen(std::move(acceptor)), asio::detached);
    ctx.run();
    return 0;
}
