// coio/net/connection.hpp - open_connection (asyncio.open_connection) and
// connect (the same, as a raw socket).
#pragma once

#include <coio/net/address.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <cstdint>
#include <string>

namespace coio {

// Connect to host:port and return the raw socket. A name ("localhost") is
// resolved off the loop thread (resolve.hpp) and its addresses are tried in
// order until one connects. Throws net_error naming the host and what was
// tried, e.g. "connect to 127.0.0.1:9: Connection refused" or "resolve
// nosuch.example:80: Name or service not known". (socket::connect is the
// status-returning form.)
//
// Connect timeout: bound the await, e.g.
//   coio::socket s = co_await coio::wait_for(coio::connect(host, port), 5s);
// On expiry the connect (and a lookup in progress) is cancelled and waited
// for, the socket is closed, and wait_for throws coio::timeout_error: nothing
// is left behind (tests/net/stream_timeout_test.cpp checks it against a SYN
// that is never answered). The kernel's own limit is about two minutes.
task<socket> connect(std::string host, std::uint16_t port);
task<socket> connect(address to);

// asyncio.open_connection: connect and wrap the connection in buffered streams.
//   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", port);
// Throws as connect() does. `opts` may set read/write/idle timeouts for the
// connection (stream.hpp); a connect timeout is wait_for, as above.
task<stream_pair> open_connection(std::string host, std::uint16_t port, stream_options opts = {});
task<stream_pair> open_connection(address to, stream_options opts = {});

} // namespace coio
