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
// Addresses (asyncio's create_server): the host is a numeric address, a name
// ("localhost", resolved off the loop thread: resolve.hpp) or "" for every
// interface (0.0.0.0 and ::). The server listens on every address the hosts
// resolve to, one socket each (IPv6 ones with IPV6_V6ONLY, so that :: and
// 0.0.0.0 can coexist), and serves them all with one handler, one connection
// count and one close(). Port 0 gives the SAME port on every socket: the
// first bind picks it and the others bind to it; if another program holds
// that port on one of the addresses, all are closed and the whole set is
// tried again with a new port (asyncio instead lets each socket pick its
// own). Errors name the address: "bind 192.0.2.1:80: Cannot assign requested
// address".
//
// Running out of fds (EMFILE, ENFILE, ENOBUFS, ENOMEM) on accept pauses
// accepting - reported once to the exception handler - and retries after a
// backoff (10 ms doubling to 1 s) or as soon as one of this server's
// connections closes, whichever is first. It never spins and never stops
// listening for good; the waiting clients stay in the kernel's backlog.
//
// Connection limit (server_options::max_connections): at the limit the
// server stops accepting until one of its connections ends. Clients beyond
// it are not refused: the kernel completes their handshake and they wait in
// the listen backlog (`backlog`), then are served in turn; once the backlog
// is full too, the kernel drops further SYNs and those clients retry. (Redis
// and nginx's limit_conn accept and close instead.) At most max_connections
// handlers run at once. With several listening sockets, each has an accept
// waiting when the limit is reached, and a client one of them accepts
// meanwhile waits, accepted but not yet handled, for the next free place
// (so at most one such client per extra socket).
#pragma once

#include <coio/detail/callable_arg.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/address.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <string>
#include <type_traits>
#include <vector>

namespace coio {

namespace detail {
struct listener_state;
struct connection_node;
} // namespace detail

struct server_options {
    int backlog = 1024;
    bool reuse_address = true;
    bool reuse_port = false; // SO_REUSEPORT (several servers on one port)
    // With reuse_port, on a thread pinned to one CPU (run_loops_options::pin):
    // SO_INCOMING_CPU on the listening socket, so that the kernel (Linux 6.2
    // and later) hands this server the connections whose packets that CPU
    // processes, instead of picking a listener of the group by hash - a
    // connection is then served on the core its packets arrive on. Ignored
    // where the thread may run on several CPUs, or where the system has no
    // SO_INCOMING_CPU (the kernel's hash spreads connections as before).
    // On loopback the CPU that processes a SYN is the client's: a load
    // generator on one CPU then puts every connection on one loop.
    bool steer_to_cpu = false;
    bool nodelay = true;             // TCP_NODELAY on accepted sockets
    std::size_t max_connections = 0; // 0: no limit (see above)
    // For handlers that take (stream_reader, stream_writer): limits, water
    // marks and the read/write/idle timeouts every connection starts with
    // (stream.hpp; stream_writer::set_timeouts changes one connection's).
    stream_options stream;
};

struct server_stats {
    std::uint64_t accepted = 0;
    std::uint64_t accept_errors = 0; // failed accept calls (EMFILE etc.)
    std::uint64_t accept_pauses = 0; // times accepting was paused for lack of fds
    std::uint64_t limit_waits = 0;   // times accepting waited at max_connections
    std::uint64_t active = 0;        // connection tasks running now
};

namespace detail {

// What server and unix_server share: the accept loops and the connections
// they started (lib/net/listener.cpp).
class server_base {
public:
    [[nodiscard]] bool is_serving() const noexcept;
    [[nodiscard]] server_stats stats() const noexcept;

    // Stop accepting and close the listening sockets. Connection tasks
    // already running go on (close_clients() ends them). Idempotent.
    void close() noexcept;
    // asyncio 3.13's Server.close_clients(): close every connection this
    // server accepted whose handler is still running, and cancel its
    // handler task. A stream connection is closed as stream_writer::close()
    // closes it - what is buffered is sent first, then the socket is closed;
    // write() throws after that, a read in progress sees the cancel. A raw
    // socket handler is cancelled; its socket closes when its frame unwinds
    // (the kernel sends what is queued, then a FIN). A connection accepted
    // but not started yet is closed without running the handler. Does not
    // suspend and does not stop accepting: call close() first to stop new
    // connections, then wait_closed() to wait for the handlers to end. A
    // handler that catches cancelled_error and goes on keeps running.
    void close_clients() noexcept;
    // asyncio 3.13's Server.abort_clients(): the same, but each connection is
    // reset (SO_LINGER 0, RST): unsent data is dropped and the peer's next
    // operation fails with ECONNRESET. Unix-domain sockets have no reset:
    // they are closed.
    void abort_clients() noexcept;
    // Suspend until close() is called (by another task).
    task<> serve_forever();
    // Suspend until the server is closed and every connection task has ended.
    task<> wait_closed();

protected:
    server_base() noexcept = default;
    explicit server_base(std::shared_ptr<listener_state> st) noexcept;
    server_base(server_base&&) noexcept = default;
    server_base& operator=(server_base&& o) noexcept {
        if (this != &o) {
            close();
            m_state = std::move(o.m_state);
        }
        return *this;
    }
    server_base(const server_base&) = delete;
    server_base& operator=(const server_base&) = delete;
    ~server_base() { close(); }

    std::shared_ptr<listener_state> m_state;
};

} // namespace detail

class server : public detail::server_base {
public:
    server() noexcept = default;
    explicit server(std::shared_ptr<detail::listener_state> st) noexcept
        : server_base(std::move(st)) {}

    // Every address the server listens on, in the order they were bound.
    [[nodiscard]] std::vector<address> addresses() const;
    // The first of them (empty for a default-constructed server).
    [[nodiscard]] address local_address() const;
    [[nodiscard]] std::uint16_t port() const { return local_address().port(); }
};

namespace detail {
// Makes the handler's task for one accepted socket and the peer address
// accept reported (empty for a Unix peer). The server's state owns
// the function (and with it the handler object), and each connection task
// keeps the state alive, so the handler's own frame is the only one per
// connection besides the server's connection task: no adapter coroutine.
// The node is the connection's entry in the server's client list (in the
// connection task's frame); stream handlers register their streams on it so
// that close_clients() / abort_clients() reach them.
using connection_fn = std::function<task<>(socket, connection_node&)>;

// make_streams, registered on the server's client list.
stream_pair make_server_streams(socket s, const stream_options& opts, connection_node& node);

// The connection_fn for a handler taking (stream_reader, stream_writer) or
// (socket); start_server and start_unix_server both use it.
template <class Handler>
connection_fn make_connection_fn(Handler handler, stream_options so) {
    auto h = std::make_shared<Handler>(std::move(handler));
    if constexpr (std::is_invocable_v<Handler&, stream_reader, stream_writer>) {
        return [h, so](socket s, connection_node& node) {
            stream_pair p = make_server_streams(std::move(s), so, node);
            return (*h)(std::move(p.reader), std::move(p.writer));
        };
    } else {
        static_assert(std::is_invocable_v<Handler&, socket>,
                      "start_server / start_unix_server: the handler must be callable as "
                      "handler(stream_reader, stream_writer) or handler(socket), returning "
                      "coio::task<>");
        return [h](socket s, connection_node&) { return (*h)(std::move(s)); };
    }
}
task<server> start_server_impl(connection_fn fn, std::vector<std::string> hosts, std::uint16_t port,
                               server_options opts);

// TLS (lib/tls/streams.cpp): each connection's handshake, then the handler.
using stream_handler = std::function<task<>(stream_reader, stream_writer)>;
connection_fn make_tls_connection_fn(stream_handler handler, tls_context ctx, tls_options tls,
                                     stream_options so);
} // namespace detail

// Listen on host:port: a numeric address, a name, or "" for every interface
// (see "Addresses" above); port 0 picks a free port (port()). Throws
// net_error naming the address (or the host that did not resolve) if it
// cannot resolve, bind or listen; nothing is left open then.
// The handler is taken before any coroutine starts (detail/callable_arg.hpp):
// pass a function, a name (copied), or coio::moved(std::move(name)).
template <class Handler>
task<server> start_server(Handler&& handler, std::string host, std::uint16_t port,
                          server_options opts = {}) {
    detail::check_callable_arg<Handler>();
    std::vector<std::string> hosts;
    hosts.push_back(std::move(host));
    return detail::start_server_impl(
        detail::make_connection_fn(detail::take_callable(std::forward<Handler>(handler)),
                                   opts.stream),
        std::move(hosts), port, opts);
}

// The same on every address of several hosts (asyncio's host sequence):
//   auto start = coio::start_server(h, {"127.0.0.1", "::1"}, 0);
//   coio::server srv = co_await std::move(start);
// An address that two hosts share is bound once. (g++ 12 rejects a braced
// list in the same statement as a co_await - "array used as initializer" -
// hence the task made first; a named std::vector works as well.)
template <class Handler>
task<server> start_server(Handler&& handler, std::vector<std::string> hosts, std::uint16_t port,
                          server_options opts = {}) {
    detail::check_callable_arg<Handler>();
    return detail::start_server_impl(
        detail::make_connection_fn(detail::take_callable(std::forward<Handler>(handler)),
                                   opts.stream),
        std::move(hosts), port, opts);
}
template <class Handler>
task<server> start_server(Handler&& handler, std::initializer_list<std::string> hosts,
                          std::uint16_t port, server_options opts = {}) {
    return start_server(std::forward<Handler>(handler), std::vector<std::string>(hosts), port,
                        opts);
}

// asyncio.start_server(..., ssl=ctx): the same over TLS, on the same
// addresses (a name, "" or a list of hosts) and with the same server_options
// (max_connections counts connections in their handshake too;
// close_clients() / abort_clients() reach them, a handshake in progress is
// cancelled). Each connection does the handshake first (at most
// tls.handshake_timeout); the handler gets the streams of an established
// session (writer.tls() has its details). A failed handshake - plaintext or
// garbage, a client that rejects the certificate, a timeout - closes that
// connection only and is reported to the loop's exception handler, naming
// the peer and OpenSSL's reason ("TLS handshake from 127.0.0.1:40522: wrong
// version number; connection closed"); the handler never sees it. The
// handler must take (stream_reader, stream_writer); it is taken as the plain
// start_server takes it. Throws std::invalid_argument if `ctx` is not a
// server context, and as start_server above.
template <class Handler>
task<server> start_server(Handler&& handler, std::vector<std::string> hosts, std::uint16_t port,
                          tls_context ctx, server_options opts, tls_options tls) {
    detail::check_callable_arg<Handler>();
    using owned = detail::owned_t<Handler>;
    static_assert(std::is_invocable_v<owned&, stream_reader, stream_writer>,
                  "start_server with TLS: the handler must be callable as "
                  "handler(stream_reader, stream_writer), returning coio::task<>");
    auto h = std::make_shared<owned>(detail::take_callable(std::forward<Handler>(handler)));
    detail::stream_handler fn = [h](stream_reader r, stream_writer w) {
        return (*h)(std::move(r), std::move(w));
    };
    return detail::start_server_impl(
        detail::make_tls_connection_fn(std::move(fn), std::move(ctx), std::move(tls), opts.stream),
        std::move(hosts), port, opts);
}
template <class Handler>
task<server> start_server(Handler&& handler, std::string host, std::uint16_t port, tls_context ctx,
                          server_options opts, tls_options tls) {
    std::vector<std::string> hosts;
    hosts.push_back(std::move(host));
    return start_server(std::forward<Handler>(handler), std::move(hosts), port, std::move(ctx),
                        opts, std::move(tls));
}
// The same with the default tls_options (overloads, not a default argument:
// see tls.hpp on g++ 12).
template <class Handler>
task<server> start_server(Handler&& handler, std::string host, std::uint16_t port, tls_context ctx,
                          server_options opts = {}) {
    return start_server(std::forward<Handler>(handler), std::move(host), port, std::move(ctx), opts,
                        tls_options{});
}
template <class Handler>
task<server> start_server(Handler&& handler, std::vector<std::string> hosts, std::uint16_t port,
                          tls_context ctx, server_options opts = {}) {
    return start_server(std::forward<Handler>(handler), std::move(hosts), port, std::move(ctx),
                        opts, tls_options{});
}

} // namespace coio
