// coio/net/unix.hpp - Unix-domain stream sockets (asyncio's
// open_unix_connection and start_unix_server).
//
//   coio::unix_server srv = co_await coio::start_unix_server(handler, "/run/app.sock");
//   auto [reader, writer] = co_await coio::open_unix_connection("/run/app.sock");
//
// A path is a filesystem path, or on Linux a name in the abstract namespace
// when it starts with '\0' ("\0app": no file is created, nothing to remove).
// A path holds at most 107 bytes (108 for an abstract name; sun_path's size
// where that differs): a longer one throws net_error (ENAMETOOLONG) naming it,
// and a path with a '\0' inside throws std::invalid_argument.
//
// Addresses: coio::address holds IPv4/IPv6 only, so on a Unix stream
// stream_writer::peer_address() and local_address() report an address of
// family none ("(no address)"). The path is what identifies a Unix socket:
// unix_server::path(), and for a raw socket local_unix_path() /
// peer_unix_path() - asyncio's get_extra_info('sockname' / 'peername'),
// which is "" for an unbound client, as it usually is.
//
// The listening socket file (asyncio 3.11 behaviour, checked with python3):
//  - start_unix_server removes a socket file already at the path (a stale one
//    from a process that died, or a live server's: as asyncio, it is taken
//    over); any other kind of file there makes it fail with EADDRINUSE.
//  - close() removes the file if it is still the one this server created
//    (asyncio 3.13's cleanup_socket; 3.11 leaves it behind).
#pragma once

#include <coio/detail/callable_arg.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/server.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <memory>
#include <string>

namespace coio {

// Connect to the Unix stream socket at path. Throws net_error naming the path:
// "connect to /tmp/app.sock: No such file or directory" (ECONNREFUSED: a
// socket file nobody listens on). While the listener's backlog is full it
// waits for room, retrying with a backoff of 1 ms doubling to 100 ms, as a
// blocking connect would (asyncio reports such a socket as connected when it
// is not); bound it with wait_for, cancel it like any await.
task<socket> connect_unix(std::string path);

// asyncio.open_unix_connection: connect_unix wrapped in buffered streams.
//   auto [reader, writer] = co_await coio::open_unix_connection(path);
task<stream_pair> open_unix_connection(std::string path, stream_options opts = {});

// The path a Unix socket is bound to / its peer is bound to: "" if unbound,
// "\0name" for an abstract name. Throws net_error if fd is not a socket.
[[nodiscard]] std::string local_unix_path(const socket& s);
[[nodiscard]] std::string peer_unix_path(const socket& s);

struct unix_server_options {
    int backlog = 1024;
    std::size_t max_connections = 0; // 0: no limit (as server_options)
    stream_options stream;           // for handlers that take (stream_reader, stream_writer)
};

// A listening Unix stream socket with its accept loop: the same interface and
// the same behaviour as coio::server (server.hpp: each connection its own
// task; a handler's exception goes to the loop's exception handler, named
// "connection on <path>"; EMFILE pauses accepting with a backoff;
// max_connections; close_clients / abort_clients - which closes, as a Unix
// socket has no reset), plus the file handling above: close() also removes
// the socket file.
class unix_server : public detail::server_base {
public:
    unix_server() noexcept = default;
    explicit unix_server(std::shared_ptr<detail::listener_state> st) noexcept
        : server_base(std::move(st)) {}

    // The path given to start_unix_server.
    [[nodiscard]] const std::string& path() const noexcept;
};

namespace detail {
task<unix_server> start_unix_server_impl(connection_fn fn, std::string path,
                                         unix_server_options opts);
} // namespace detail

// asyncio.start_unix_server(cb, path): listen on path and run
// handler(stream_reader, stream_writer) or handler(socket) for each
// connection. The handler is copied once into the server's state, which every
// connection task keeps alive, so a stateful handler cannot dangle. Throws
// net_error naming the path if it cannot bind or listen.
template <class Handler>
task<unix_server> start_unix_server(Handler&& handler, std::string path,
                                    unix_server_options opts = {}) {
    detail::check_callable_arg<Handler>();
    return detail::start_unix_server_impl(
        detail::make_connection_fn(detail::take_callable(std::forward<Handler>(handler)),
                                   opts.stream),
        std::move(path), opts);
}

} // namespace coio
