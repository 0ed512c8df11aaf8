// lib/net/server.cpp - start_server: a TCP listener on the shared accept loop
// (listener.hpp).
#include "net/listener.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/server.hpp>

namespace coio {
namespace detail {

struct server_state : listener_state {
    address m_local;
};

task<server> start_server_impl(connection_fn fn, address at, server_options opts) {
    auto st = std::make_shared<server_state>();
    st->m_loop = &event_loop::running();
    st->m_fn = std::move(fn);
    st->m_nodelay = opts.nodelay;
    st->m_listener = socket::open_tcp(at.family_kind());
    if (opts.reuse_address) {
        st->m_listener.set_reuse_address(true);
    }
    st->m_listener.bind(at);
    st->m_listener.listen(opts.backlog);
    st->m_local = st->m_listener.local_address();
    st->m_display = st->m_local.to_string();
    start_accepting(st);
    co_return server(std::move(st));
}

} // namespace detail

address server::local_address() const {
    return m_state ? m_state->m_local : address{};
}

bool server::is_serving() const noexcept {
    return m_state && !m_state->m_closed;
}

server_stats server::stats() const noexcept {
    return m_state ? m_state->m_stats : server_stats{};
}

void server::close() noexcept {
    if (m_state) {
        m_state->close();
    }
}

task<> server::serve_forever() {
    return detail::wait_until_closed(m_state);
}

task<> server::wait_closed() {
    return detail::wait_until_idle(m_state);
}

} // namespace coio
