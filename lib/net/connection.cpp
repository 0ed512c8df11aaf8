// lib/net/connection.cpp - open_connection.
#include <coio/net/connection.hpp>

namespace coio {

task<socket> open_connection(address to) {
    socket s = socket::open_tcp(to.family_kind());
    io_result r = co_await s.connect(to);
    if (!r) {
        throw net_error(r.error, "connect to " + to.to_string());
    }
    s.set_nodelay(true);
    co_return s;
}

task<socket> open_connection(std::string host, std::uint16_t port) {
    return open_connection(address::parse(host, port));
}

} // namespace coio
