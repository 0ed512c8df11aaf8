// coio/net/server.hpp - start_server (asyncio.start_server).
//
//   coio::task<> echo(coio::socket s) { ... }
//   coio::server srv = co_await coio::start_server(echo, "127.0.0.1", 0);
//   std::printf("port %u\n", srv.port());
//   co_await srv.serve_forever();
//
// Each accepted connection runs `handler(reader, writer)` (buffered streams,
// as asyncio's start_server) or `handler(socket)` (raw socket) as its own
// task. The handler is a function or function object returning task<void>; it is copied
// once and kept alive (shared) until the last connection task using it ends,
// so a stateful handler is safe. The handler takes its arguments by value (a
// coroutine's reference parameters would dangle: the streams and the socket
// are moved into the handler's frame, nothing else holds them). A handler's
// exception goes to the loop's exception handler, with the task name
// "connection from <peer>", and does not affect the server.
//
// Running out of fds (EMFILE, ENFILE, ENOBUFS, ENOMEM) on accept pauses
// accepting - reported once to the exception handler - and retries after a
// backoff (10 ms doubling to 1 s) or as soon as one of this server's
// connections closes, whichever is first. It never spins and never stops
// listening for good; the waiting clients stay in the kernel's backlog.
#pragma once

#include <coio/event_loop.hpp>
#include <coio/net/address.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <type_traits>

namespace coio {

namespace detail {
struct server_state;
}

struct server_options {
    int backlog = 1024;
    bool reuse_address = true;
    bool nodelay = true;   // TCP_NODELAY on accepted sockets
    stream_options stream; // for handlers that take (stream_reader, stream_writer)
};

struct server_stats {
    std::uint64_t accepted = 0;
    std::uint64_t accept_errors = 0; // failed accept calls (EMFILE etc.)
    std::uint64_t accept_pauses = 0; // times accepting was paused for lack of fds
    std::uint64_t active = 0;        // connection tasks running now
};

class server {
public:
    server() noexcept = default;
    explicit server(std::shared_ptr<detail::server_state> st) noexcept : m_state(std::move(st)) {}
    server(server&&) noexcept = default;
    server& operator=(server&& o) noexcept {
        if (this != &o) {
            close();
            m_state = std::move(o.m_state);
        }
        return *this;
    }
    server(const server&) = delete;
    server& operator=(const server&) = delete;
    ~server() { close(); }

    [[nodiscard]] address local_address() const;
    [[nodiscard]] std::uint16_t port() const { return local_address().port(); }
    [[nodiscard]] bool is_serving() const noexcept;
    [[nodiscard]] server_stats stats() const noexcept;

    // Stop accepting and close the listening socket. Connection tasks already
    // running go on. Idempotent.
    void close() noexcept;
    // Suspend until close() is called (by another task).
    task<> serve_forever();
    // Suspend until the server is closed and every connection task has ended.
    task<> wait_closed();

private:
    std::shared_ptr<detail::server_state> m_state;
};

namespace detail {
// Makes the handler's task for one accepted socket and the peer address
// accept reported (empty for a Unix peer). The server's state owns
// the function (and with it the handler object), and each connection task
// keeps the state alive, so the handler's own frame is the only one per
// connection besides the server's connection task: no adapter coroutine.
using connection_fn = std::function<task<>(socket, address)>;

// The connection_fn for a handler taking (stream_reader, stream_writer) or
// (socket); start_server and start_unix_server both use it.
template <class Handler>
connection_fn make_connection_fn(Handler handler, stream_options so) {
    auto h = std::make_shared<Handler>(std::move(handler));
    if constexpr (std::is_invocable_v<Handler&, stream_reader, stream_writer>) {
        return [h, so](socket s, address peer) {
            stream_pair p = make_accepted_streams(std::move(s), so, peer);
            return (*h)(std::move(p.reader), std::move(p.writer));
        };
    } else {
        static_assert(std::is_invocable_v<Handler&, socket>,
                      "start_server / start_unix_server: the handler must be callable as "
                      "handler(stream_reader, stream_writer) or handler(socket), returning "
                      "coio::task<>");
        return [h](socket s, address) { return (*h)(std::move(s)); };
    }
}
task<server> start_server_impl(connection_fn fn, address at, server_options opts);

// TLS (lib/tls/streams.cpp): each connection's handshake, then the handler.
using stream_handler = std::function<task<>(stream_reader, stream_writer)>;
connection_fn make_tls_connection_fn(stream_handler handler, tls_context ctx, tls_options tls,
                                     stream_options so);
} // namespace detail

// Listen on host:port (numeric host; port 0 picks a free port, see port()).
// Throws net_error naming the address if it cannot bind or listen.
template <class Handler>
task<server> start_server(Handler handler, std::string host, std::uint16_t port,
                          server_options opts = {}) {
    return detail::start_server_impl(detail::make_connection_fn(std::move(handler), opts.stream),
                                     address::parse(host, port), opts);
}

// asyncio.start_server(..., ssl=ctx): the same over TLS. Each connection does
// the handshake first (at most tls.handshake_timeout); the handler gets the
// streams of an established session (writer.tls() has its details). A
// failed handshake - plaintext or garbage, a client that rejects the
// certificate, a timeout - closes that connection only and is reported to
// the loop's exception handler, naming the peer and OpenSSL's reason
// ("TLS handshake from 127.0.0.1:40522: wrong version number; connection
// closed"); the handler never sees it. The handler must take
// (stream_reader, stream_writer). Throws std::invalid_argument if `ctx` is
// not a server context, and as start_server above.
template <class Handler>
task<server> start_server(Handler handler, std::string host, std::uint16_t port, tls_context ctx,
                          server_options opts, tls_options tls) {
    static_assert(std::is_invocable_v<Handler&, stream_reader, stream_writer>,
                  "start_server with TLS: the handler must be callable as "
                  "handler(stream_reader, stream_writer), returning coio::task<>");
    auto h = std::make_shared<Handler>(std::move(handler));
    detail::stream_handler fn = [h](stream_reader r, stream_writer w) {
        return (*h)(std::move(r), std::move(w));
    };
    return detail::start_server_impl(
        detail::make_tls_connection_fn(std::move(fn), std::move(ctx), std::move(tls), opts.stream),
        address::parse(host, port), opts);
}
// The same with the default tls_options (an overload, not a default
// argument: see tls.hpp on g++ 12).
template <class Handler>
task<server> start_server(Handler handler, std::string host, std::uint16_t port, tls_context ctx,
                          server_options opts = {}) {
    return start_server(std::move(handler), std::move(host), port, std::move(ctx), opts,
                        tls_options{});
}

} // namespace coio
