// coio/net/connection.hpp - open_connection (asyncio.open_connection).
#pragma once

#include <coio/net/address.hpp>
#include <coio/net/socket.hpp>
#include <coio/task.hpp>

#include <cstdint>
#include <string>

namespace coio {

// Connect to a numeric host ("127.0.0.1", "::1") and port. Throws
// std::invalid_argument for a host that is not a numeric address, and
// net_error naming the address for a failed connect, e.g.
// "connect to 127.0.0.1:9: Connection refused". (socket::connect is the
// status-returning form.)
task<socket> open_connection(std::string host, std::uint16_t port);
task<socket> open_connection(address to);

} // namespace coio
