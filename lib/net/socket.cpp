// lib/net/socket.cpp - socket setup calls and write_all. The OS is reached
// through lib/sys only.
#include "sys/socket.hpp"
#include "net/socket_ops.hpp"
#include "sys/fd.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/socket.hpp>

#include <algorithm>
#include <cerrno>
#include <stdexcept>
#include <string>

namespace coio {

namespace detail {

void set_int_option(int fd, int level, int name, int value, std::string_view what) {
    if (int r = sys::set_int_option(fd, level, name, value); r < 0) {
        throw_net_error(-r, what, {});
    }
}

void set_option(int fd, sys::sockopt o, int value) {
    if (int r = sys::set_option(fd, o, value); r < 0) {
        throw_net_error(-r, sys::setsockopt_name(o), {});
    }
}

int get_option(int fd, sys::sockopt o) {
    int v = 0;
    if (int r = sys::get_option(fd, o, v); r < 0) {
        throw_net_error(-r, sys::getsockopt_name(o), {});
    }
    return v;
}

void bind_fd(int fd, const address& a) {
    if (int r = sys::bind(fd, a.data(), a.size()); r < 0) {
        throw_net_error(-r, "bind", a.to_string());
    }
}

address local_address_of(int fd) {
    address a;
    std::uint32_t len = address::capacity();
    if (int r = sys::local_name(fd, a.data(), len); r < 0) {
        throw_net_error(-r, "getsockname", {});
    }
    a.set_size(std::min(len, address::capacity()));
    return a;
}

address peer_address_of(int fd) {
    address a;
    std::uint32_t len = address::capacity();
    if (int r = sys::peer_name(fd, a.data(), len); r < 0) {
        throw_net_error(-r, "getpeername", {});
    }
    a.set_size(std::min(len, address::capacity()));
    return a;
}

int refuse_self_connect(int fd, const address& to) noexcept {
    if (to.empty()) {
        return 0; // not IP: a Unix socket cannot connect to itself
    }
    address local;
    std::uint32_t len = address::capacity();
    if (sys::local_name(fd, local.data(), len) < 0 || len > address::capacity()) {
        return 0; // the connection stands; its first read or write will tell
    }
    local.set_size(len);
    if (local != to) {
        return 0;
    }
    // Closed normally, the connection with itself would leave the port in
    // TIME_WAIT, where a server cannot bind it for a minute (SO_REUSEADDR
    // does not help: the connect's socket did not set it). A reset leaves none.
    (void)sys::set_linger_reset(fd);
    return -ECONNREFUSED;
}

void close_socket_fd(int fd) noexcept {
    if (event_loop* loop = event_loop::current()) {
        core_of(*loop).close_fd(fd); // completes in-flight ops on fd as cancelled
    } else {
        sys::close(fd);
    }
}

void abort_socket_fd(int fd) noexcept {
    (void)sys::set_linger_reset(fd); // not TCP (Unix): a plain close
    close_socket_fd(fd);
}

} // namespace detail

socket socket::open_tcp(address::family family) {
    const bool v6 = family == address::family::ipv6;
    int fd = sys::open_stream_socket(v6 ? sys::family_ipv6 : sys::family_ipv4);
    if (fd < 0) {
        detail::throw_net_error(-fd, "socket", v6 ? "(tcp6)" : "(tcp)");
    }
    return socket(fd);
}

void socket::set_reuse_address(bool on) {
    detail::set_option(m_fd, sys::sockopt::reuse_address, on ? 1 : 0);
}

void socket::set_reuse_port(bool on) {
    detail::set_option(m_fd, sys::sockopt::reuse_port, on ? 1 : 0);
}

void socket::set_nodelay(bool on) {
    detail::set_option(m_fd, sys::sockopt::nodelay, on ? 1 : 0);
}

void socket::set_keepalive(bool on) {
    detail::set_option(m_fd, sys::sockopt::keepalive, on ? 1 : 0);
}

void socket::set_keepalive(std::chrono::seconds idle, std::chrono::seconds interval, int count) {
    if (idle.count() < 0 || interval.count() < 0 || count < 0) {
        throw std::invalid_argument(
            "coio::socket::set_keepalive: negative idle, interval or count");
    }
    const auto secs = [](std::chrono::seconds s) {
        return static_cast<int>(std::min<std::chrono::seconds::rep>(s.count(), 1 << 30));
    };
    if (int r = sys::set_keepalive(m_fd, secs(idle), secs(interval), count); r < 0) {
        detail::throw_net_error(-r, "setsockopt(SO_KEEPALIVE)", {});
    }
}

void socket::set_send_buffer_size(int bytes) {
    detail::set_option(m_fd, sys::sockopt::send_buffer, bytes);
}

void socket::set_receive_buffer_size(int bytes) {
    detail::set_option(m_fd, sys::sockopt::receive_buffer, bytes);
}

int socket::send_buffer_size() const {
    return detail::get_option(m_fd, sys::sockopt::send_buffer);
}

int socket::receive_buffer_size() const {
    return detail::get_option(m_fd, sys::sockopt::receive_buffer);
}

void socket::set_option(int level, int name, int value) {
    detail::set_int_option(m_fd, level, name, value,
                           "setsockopt(" + std::to_string(level) + ", " + std::to_string(name) +
                               ")");
}

int socket::get_option(int level, int name) const {
    int v = 0;
    if (int r = sys::get_int_option(m_fd, level, name, v); r < 0) {
        detail::throw_net_error(
            -r, "getsockopt(" + std::to_string(level) + ", " + std::to_string(name) + ")", {});
    }
    return v;
}

void socket::bind(const address& a) {
    detail::bind_fd(m_fd, a);
}

void socket::listen(int backlog) {
    if (int r = sys::listen(m_fd, backlog); r < 0) {
        detail::throw_net_error(-r, "listen", local_address().to_string());
    }
}

address socket::local_address() const {
    return detail::local_address_of(m_fd);
}

address socket::peer_address() const {
    return detail::peer_address_of(m_fd);
}

std::error_code socket::shutdown(shutdown_how how) noexcept {
    const sys::shut h = how == shutdown_how::read    ? sys::shut::read
                        : how == shutdown_how::write ? sys::shut::write
                                                     : sys::shut::both;
    if (int r = sys::shutdown(m_fd, h); r < 0) {
        return sys::errno_code(-r);
    }
    return {};
}

void socket::close() noexcept {
    if (m_fd < 0) {
        return;
    }
    detail::close_socket_fd(std::exchange(m_fd, -1));
}

void socket::abort() noexcept {
    if (m_fd < 0) {
        return;
    }
    detail::abort_socket_fd(std::exchange(m_fd, -1));
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
