// lib/net/socket.cpp - socket setup calls and write_all.
#include "net/socket_ops.hpp"
#include "sys/fd.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/socket.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <string>

namespace coio {

namespace detail {

void set_int_option(int fd, int level, int name, int value, std::string_view what) {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        throw_net_error(errno, what, {});
    }
}

void bind_fd(int fd, const address& a) {
    if (::bind(fd, static_cast<const sockaddr*>(a.data()), a.size()) != 0) {
        throw_net_error(errno, "bind", a.to_string());
    }
}

address local_address_of(int fd) {
    address a;
    socklen_t len = address::capacity();
    if (::getsockname(fd, static_cast<sockaddr*>(a.data()), &len) != 0) {
        throw_net_error(errno, "getsockname", {});
    }
    a.set_size(std::min<socklen_t>(len, address::capacity()));
    return a;
}

address peer_address_of(int fd) {
    address a;
    socklen_t len = address::capacity();
    if (::getpeername(fd, static_cast<sockaddr*>(a.data()), &len) != 0) {
        throw_net_error(errno, "getpeername", {});
    }
    a.set_size(std::min<socklen_t>(len, address::capacity()));
    return a;
}

void close_socket_fd(int fd) noexcept {
    if (event_loop* loop = event_loop::current()) {
        core_of(*loop).close_fd(fd); // completes in-flight ops on fd as cancelled
    } else {
        ::close(fd);
    }
}

} // namespace detail

socket socket::open_tcp(address::family family) {
    int af = family == address::family::ipv6 ? AF_INET6 : AF_INET;
    int fd = sys::open_stream_socket(af);
    if (fd < 0) {
        detail::throw_net_error(-fd, "socket", af == AF_INET6 ? "(tcp6)" : "(tcp)");
    }
    return socket(fd);
}

void socket::set_reuse_address(bool on) {
    detail::set_int_option(m_fd, SOL_SOCKET, SO_REUSEADDR, on ? 1 : 0, "setsockopt(SO_REUSEADDR)");
}

void socket::set_nodelay(bool on) {
    detail::set_int_option(m_fd, IPPROTO_TCP, TCP_NODELAY, on ? 1 : 0, "setsockopt(TCP_NODELAY)");
}

void socket::bind(const address& a) {
    detail::bind_fd(m_fd, a);
}

void socket::listen(int backlog) {
    if (::listen(m_fd, backlog) != 0) {
        detail::throw_net_error(errno, "listen", local_address().to_string());
    }
}

address socket::local_address() const {
    return detail::local_address_of(m_fd);
}

address socket::peer_address() const {
    return detail::peer_address_of(m_fd);
}

std::error_code socket::shutdown(shutdown_how how) noexcept {
    int h = how == shutdown_how::read ? SHUT_RD : how == shutdown_how::write ? SHUT_WR : SHUT_RDWR;
    if (::shutdown(m_fd, h) != 0) {
        return sys::errno_code(errno);
    }
    return {};
}

void socket::close() noexcept {
    if (m_fd < 0) {
        return;
    }
    detail::close_socket_fd(std::exchange(m_fd, -1));
}

task<io_result> socket::write_all(std::span<const std::byte> buf) {
    std::size_t done = 0;
    while (done < buf.size()) {
        if (done > 0 && m_fd < 0) {
            // close() ran after one send completed and before this loop went
            // on: report it as close() reports a send in flight (socket.hpp),
            // not as the EBADF the next send on fd -1 would give.
            co_return detail::make_io_result(-ECANCELED, done);
        }
        io_result r = co_await write_some(buf.subspan(done));
        done += r.bytes;
        if (!r) {
            r.bytes = done;
            co_return r;
        }
    }
    co_return io_result{io_status::ok, done, {}};
}

task<io_result> socket::write_all(std::string_view buf) {
    return write_all(std::as_bytes(std::span(buf.data(), buf.size())));
}

task<io_result> socket::write_all(buffer_lease data) {
    std::size_t done = 0;
    if (!data.empty()) {
        io_result r = co_await write_some_now(data.view());
        if (r.ok()) {
            done = r.bytes;
        } else if (r.error != std::errc::resource_unavailable_try_again) {
            co_return r;
        }
    }
    if (done == data.size()) {
        co_return io_result{io_status::ok, done, {}};
    }
    std::string rest(data.view().substr(done)); // the buffer goes back before any wait
    data.reset();
    io_result r = co_await write_all(std::string_view(rest));
    r.bytes += done;
    co_return r;
}

} // namespace coio
