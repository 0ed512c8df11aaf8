// lib/net/server.cpp - start_server: TCP listeners on every address of the
// given hosts, served by the shared accept loops (listener.hpp).
#include "net/listener.hpp"
#include "net/socket_ops.hpp"
#include "net/stream_state.hpp"
#include "sys/cpu.hpp"
#include "sys/socket.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/resolve.hpp>
#include <coio/net/server.hpp>

#include <algorithm>
#include <cerrno>
#include <string>
#include <vector>

namespace coio {
namespace detail {

struct server_state : listener_state {
    std::vector<address> m_addresses; // one per element of m_listeners
};

namespace {

// With port 0 and several addresses, how many times a port the first bind
// picked may turn out to be taken on another address before giving up.
constexpr int same_port_attempts = 16;

// Every address the hosts resolve to, without duplicates, in order. ""
// means every interface: 0.0.0.0 and :: (asyncio's host=None).
task<std::vector<address>> resolve_hosts(std::vector<std::string> hosts, std::uint16_t port) {
    if (hosts.empty()) {
        hosts.emplace_back();
    }
    std::vector<address> out;
    for (const std::string& h : hosts) {
        std::vector<address> found;
        if (h.empty()) {
            found = {address::any_v4(port), address::any_v6(port)};
        } else {
            found = co_await resolve(h, port);
        }
        for (const address& a : found) {
            if (std::find(out.begin(), out.end(), a) == out.end()) {
                out.push_back(a);
            }
        }
    }
    co_return out;
}

// A listening socket bound to `a`, or the bind's errno (EADDRINUSE is
// retried by the caller), or a throw for anything else. An address family
// the system lacks (EAFNOSUPPORT: no IPv6) gives an empty socket; asyncio
// skips such addresses too.
socket open_listener(const address& a, const server_options& opts, int& bind_error) {
    bind_error = 0;
    socket s;
    try {
        s = socket::open_tcp(a.family_kind());
    } catch (const net_error& e) {
        if (e.code().value() == EAFNOSUPPORT) {
            return socket();
        }
        throw;
    }
    if (opts.reuse_address) {
        s.set_reuse_address(true);
    }
    if (opts.reuse_port) {
        s.set_reuse_port(true);
        if (opts.steer_to_cpu) {
            if (const std::vector<int> cpus = sys::allowed_cpus(); cpus.size() == 1) {
                // Best effort: without it the group still spreads by hash.
                (void)sys::set_option(s.native_handle(), sys::sockopt::incoming_cpu, cpus[0]);
            }
        }
    }
    if (a.is_v6()) {
        detail::set_option(s.native_handle(), sys::sockopt::v6only, 1);
    }
    if (int r = sys::bind(s.native_handle(), a.data(), a.size()); r < 0) {
        if (-r == EADDRINUSE) {
            bind_error = EADDRINUSE;
            return socket();
        }
        throw_net_error(-r, "bind", a.to_string());
    }
    s.listen(opts.backlog);
    return s;
}

// Binds every address; with port 0 all get the port the first one got.
// Fills st's listeners and addresses or throws (closing what it opened).
void bind_all(server_state& st, const std::vector<address>& addrs, std::uint16_t port,
              const server_options& opts) {
    for (int attempt = 0;; ++attempt) {
        st.m_listeners.clear();
        st.m_addresses.clear();
        std::uint16_t chosen = port;
        const address* in_use = nullptr;
        for (const address& want : addrs) {
            address a = want;
            a.set_port(chosen);
            int bind_error = 0;
            socket s = open_listener(a, opts, bind_error);
            if (bind_error != 0) {
                in_use = &want;
                break;
            }
            if (!s.is_open()) {
                continue; // family not supported here
            }
            address local = s.local_address();
            chosen = local.port();
            st.m_listeners.push_back(listening_socket{std::move(s), local.to_string(), nullptr});
            st.m_addresses.push_back(local);
        }
        if (in_use == nullptr) {
            break;
        }
        // Taken: by another program, or - with port 0 - the port the first
        // bind picked is taken on a later address. Try a new port.
        if (port != 0 || st.m_listeners.empty() || attempt + 1 == same_port_attempts) {
            address a = *in_use;
            a.set_port(chosen);
            std::string what = a.to_string();
            if (port == 0 && !st.m_listeners.empty()) {
                what += " (the port the first address got; tried " +
                        std::to_string(same_port_attempts) + " ports)";
            }
            st.m_listeners.clear();
            throw_net_error(EADDRINUSE, "bind", what);
        }
    }
    if (st.m_listeners.empty()) {
        throw_net_error(EAFNOSUPPORT, "socket", "for " + addrs.front().to_string());
    }
}

} // namespace

task<server> start_server_impl(connection_fn fn, std::vector<std::string> hosts, std::uint16_t port,
                               server_options opts) {
    check_stream_options(opts.stream);
    std::vector<address> addrs = co_await resolve_hosts(std::move(hosts), port);
    auto st = std::make_shared<server_state>();
    st->m_loop = &event_loop::running();
    st->m_fn = std::move(fn);
    st->m_nodelay = opts.nodelay;
    st->m_max_connections = opts.max_connections;
    bind_all(*st, addrs, port, opts);
    start_accepting(st);
    co_return server(std::move(st));
}

} // namespace detail

std::vector<address> server::addresses() const {
    return m_state ? static_cast<const detail::server_state&>(*m_state).m_addresses
                   : std::vector<address>{};
}

address server::local_address() const {
    if (!m_state) {
        return {};
    }
    return static_cast<const detail::server_state&>(*m_state).m_addresses.front();
}

} // namespace coio
