// lib/net/connection.cpp - connect and open_connection (connect by name: resolve.cpp).
#include <coio/net/connection.hpp>

namespace coio {

task<socket> connect(address to) {
    socket s = socket::open_tcp(to.family_kind());
    io_result r = co_await s.connect(to);
    if (!r) {
        throw net_error(r.error, "connect to " + to.to_string());
    }
    s.set_nodelay(true);
    co_return s;
}

task<stream_pair> open_connection(address to, stream_options opts) {
    socket s = co_await connect(to);
    co_return make_streams(std::move(s), opts);
}

task<stream_pair> open_connection(std::string host, std::uint16_t port, stream_options opts) {
    socket s = co_await connect(std::move(host), port);
    co_return make_streams(std::move(s), opts);
}

} // namespace coio
