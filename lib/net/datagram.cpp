// lib/net/datagram.cpp - UDP socket setup, the msghdr behind its awaiters,
// and open_datagram_endpoint.
#include "net/socket_ops.hpp"
#include "sys/fd.hpp"
#include "sys/socket.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/datagram.hpp>
#include <coio/net/resolve.hpp>

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <new>
#include <stdexcept>
#include <vector>

namespace coio {

namespace detail {

static_assert(sizeof(msghdr) <= sizeof(msg_storage::msg));
static_assert(alignof(msghdr) <= alignof(msg_storage));
static_assert(sizeof(iovec) <= sizeof(msg_storage::iov));
static_assert(alignof(iovec) <= alignof(msg_storage));

namespace {
const msghdr* msg_of(const msg_storage& m) noexcept {
    return std::launder(reinterpret_cast<const msghdr*>(m.msg));
}
} // namespace

void prepare_msg(msg_storage& m, const void* buf, std::size_t len, void* name,
                 std::uint32_t name_len) noexcept {
    auto* iov = new (m.iov) iovec{};
    iov->iov_base = const_cast<void*>(buf); // sendmsg only reads it
    iov->iov_len = len;
    auto* msg = new (m.msg) msghdr{};
    msg->msg_name = name;
    msg->msg_namelen = name != nullptr ? name_len : 0;
    msg->msg_iov = iov;
    msg->msg_iovlen = 1;
}

std::uint32_t msg_name_len(const msg_storage& m) noexcept {
    return msg_of(m)->msg_namelen;
}

bool msg_truncated(const msg_storage& m) noexcept {
    return (msg_of(m)->msg_flags & MSG_TRUNC) != 0;
}

} // namespace detail

datagram_socket datagram_socket::open_udp(address::family family) {
    int af = family == address::family::ipv6 ? AF_INET6 : AF_INET;
    int fd = sys::open_datagram_socket(af);
    if (fd < 0) {
        detail::throw_net_error(-fd, "socket", af == AF_INET6 ? "(udp6)" : "(udp)");
    }
    return datagram_socket(fd);
}

void datagram_socket::set_reuse_address(bool on) {
    detail::set_int_option(m_fd, SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0, "setsockopt(SO_REUSEADDR)");
}

void datagram_socket::set_broadcast(bool on) {
    detail::set_int_option(m_fd, SOL_SOCKET, SO_BROADCAST, on ? 1 : 0, "setsockopt(SO_BROADCAST)");
}

void datagram_socket::bind(const address& a) {
    detail::bind_fd(m_fd, a);
}

void datagram_socket::connect(const address& to) {
    if (int r = sys::connect(m_fd, to.data(), to.size()); r < 0) {
        detail::throw_net_error(-r, "connect to", to.to_string());
    }
}

address datagram_socket::local_address() const {
    return detail::local_address_of(m_fd);
}

address datagram_socket::peer_address() const {
    return detail::peer_address_of(m_fd);
}

void datagram_socket::close() noexcept {
    if (m_fd >= 0) {
        detail::close_socket_fd(std::exchange(m_fd, -1));
    }
}

namespace {

datagram_socket open_bound(const address& local, datagram_options opts) {
    datagram_socket s = datagram_socket::open_udp(local.family_kind());
    if (opts.reuse_address) {
        s.set_reuse_address(true);
    }
    if (opts.allow_broadcast) {
        s.set_broadcast(true);
    }
    s.bind(local);
    return s;
}

} // namespace

task<datagram_socket> open_datagram_endpoint(std::string local_host, std::uint16_t local_port,
                                             datagram_options opts) {
    if (local_host.empty()) {
        throw std::invalid_argument("coio::open_datagram_endpoint: empty local host");
    }
    std::vector<address> local = co_await resolve(std::move(local_host), local_port);
    co_return open_bound(local.front(), opts);
}

task<datagram_socket> open_datagram_endpoint(std::string local_host, std::uint16_t local_port,
                                             std::string remote_host, std::uint16_t remote_port,
                                             datagram_options opts) {
    if (remote_host.empty()) {
        throw std::invalid_argument("coio::open_datagram_endpoint: empty remote host");
    }
    std::vector<address> remote = co_await resolve(remote_host, remote_port);
    if (local_host.empty()) {
        datagram_socket s = datagram_socket::open_udp(remote.front().family_kind());
        if (opts.allow_broadcast) {
            s.set_broadcast(true);
        }
        s.connect(remote.front());
        co_return s;
    }
    std::vector<address> local = co_await resolve(local_host, local_port);
    for (const address& r : remote) {
        if (r.family_kind() == local.front().family_kind()) {
            datagram_socket s = open_bound(local.front(), opts);
            s.connect(r);
            co_return s;
        }
    }
    throw net_error(std::make_error_code(std::errc::address_family_not_supported),
                    "connect to " + remote_host + ":" + std::to_string(remote_port) + " from " +
                        local.front().to_string() + " (no address of the same family)");
}

} // namespace coio
