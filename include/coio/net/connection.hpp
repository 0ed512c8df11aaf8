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

// Connect to a numeric host ("127.0.0.1", "::1") and port and return the raw
// socket. Throws std::invalid_argument for a host that is not a numeric
// address, and net_error naming the address for a failed connect, e.g.
// "connect to 127.0.0.1:9: Connection refused". (socket::connect is the
// status-returning form.)
task<socket> connect(std::string host, std::uint16_t port);
task<socket> connect(address to);

// asyncio.open_connection: connect and wrap the connection in buffered streams.
//   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", port);
// Throws as connect() does.
task<stream_pair> open_connection(std::string host, std::uint16_t port, stream_options opts = {});
task<stream_pair> open_connection(address to, stream_options opts = {});

} // namespace coio
