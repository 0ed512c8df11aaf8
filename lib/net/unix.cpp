// lib/net/unix.cpp - Unix-domain stream sockets: connect_unix, and
// start_unix_server on the accept loop it shares with start_server
// (listener.hpp).
//
// coio::address is sized for IPv4/IPv6 (28 bytes; it sits in per-connection
// structures), so a sockaddr_un (110 bytes) never goes through it: the
// accept loop uses an awaiter with its own sockaddr_un for a Unix listener
// (listener.cpp), and connect is a plain call (see connect_unix).
#include "net/listener.hpp"
#include "net/socket_ops.hpp"
#include "net/stream_state.hpp"
#include "sys/fd.hpp"
#include "sys/socket.hpp"

#include <coio/net/unix.hpp>
#include <coio/sleep.hpp>

#include <sys/un.h> // sockaddr_un: the address is built here, the calls are in lib/sys

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstring>
#include <stdexcept>

namespace coio {
namespace {

constexpr std::size_t path_room = sizeof(sockaddr_un::sun_path);

bool is_abstract(const std::string& path) noexcept {
    return !path.empty() && path.front() == '\0';
}

// How a path appears in messages: abstract names as "@name" (ss, netstat).
std::string display(const std::string& path) {
    return is_abstract(path) ? "@" + path.substr(1) : path;
}

struct unix_address {
    sockaddr_un sa{};
    std::uint32_t len = 0;
};

// The sockaddr_un for `path`; throws naming `op` and the path if it cannot be one.
unix_address make_unix_address(const std::string& path, std::string_view op) {
    if (path.empty()) {
        throw std::invalid_argument("coio: empty Unix socket path");
    }
    if (path.find('\0', 1) != std::string::npos) {
        throw std::invalid_argument("coio: Unix socket path '" + display(path) +
                                    "' has a '\\0' inside");
    }
    // A file path needs its terminating '\0' inside sun_path; an abstract
    // name is counted by the address length instead.
    const std::size_t room = is_abstract(path) ? path_room : path_room - 1;
    if (path.size() > room) {
        detail::throw_net_error(ENAMETOOLONG, op,
                                display(path) + " (" + std::to_string(path.size()) +
                                    " bytes; a Unix socket path holds at most " +
                                    std::to_string(room) + ")");
    }
    unix_address a;
    a.sa.sun_family = static_cast<sa_family_t>(sys::family_unix);
    std::memcpy(a.sa.sun_path, path.data(), path.size());
    a.len = static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                       (is_abstract(path) ? 0 : 1));
    return a;
}

// The path in a sockaddr_un the kernel filled (len bytes of it).
std::string path_of(const sockaddr_un& sa, std::uint32_t len) {
    const auto head = static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path));
    if (len <= head) {
        return {}; // unbound
    }
    std::size_t n = std::min<std::size_t>(len - head, path_room);
    if (sa.sun_path[0] != '\0') {
        n = ::strnlen(sa.sun_path, n); // a file path: up to its '\0'
    }
    return std::string(sa.sun_path, n);
}

socket open_unix_socket(const std::string& path) {
    int fd = sys::open_stream_socket(sys::family_unix);
    if (fd < 0) {
        detail::throw_net_error(-fd, "socket", "(unix) for " + display(path));
    }
    return socket(fd);
}

} // namespace

// A Unix-domain connect never waits for the peer: it succeeds, fails, or - when
// the listener's backlog is full - fails with EAGAIN on a non-blocking socket,
// and nothing signals when room appears (the socket even polls writable), so
// the backends cannot wait for it: epoll would park the op forever, io_uring
// returns EAGAIN. So the connect is called here, and a full backlog is waited
// out with a short backoff (1 ms doubling to 100 ms), as a blocking connect
// waits; sleep is a cancellation point and wait_for bounds it.
task<socket> connect_unix(std::string path) {
    using namespace std::chrono_literals;
    const unix_address to = make_unix_address(path, "connect to");
    socket s = open_unix_socket(path);
    std::chrono::milliseconds backoff = 1ms;
    for (;;) {
        const int r = sys::connect(s.native_handle(), &to.sa, to.len);
        if (r == 0) {
            co_return s;
        }
        const int e = -r;
        if (e != EAGAIN && e != EINTR) {
            detail::throw_net_error(e, "connect to", display(path));
        }
        co_await sleep(backoff);
        backoff = std::min(backoff * 2, std::chrono::milliseconds(100ms));
    }
}

task<stream_pair> open_unix_connection(std::string path, stream_options opts) {
    socket s = co_await connect_unix(std::move(path));
    co_return make_streams(std::move(s), opts);
}

std::string local_unix_path(const socket& s) {
    sockaddr_un sa{};
    std::uint32_t len = sizeof sa;
    if (int r = sys::local_name(s.native_handle(), &sa, len); r < 0) {
        detail::throw_net_error(-r, "getsockname", {});
    }
    return path_of(sa, len);
}

std::string peer_unix_path(const socket& s) {
    sockaddr_un sa{};
    std::uint32_t len = sizeof sa;
    if (int r = sys::peer_name(s.native_handle(), &sa, len); r < 0) {
        detail::throw_net_error(-r, "getpeername", {});
    }
    return path_of(sa, len);
}

namespace detail {

struct unix_server_state : listener_state {
    std::string m_path;
    // The socket file this server created (none for an abstract name):
    // close() removes the path only while it is still this file.
    sys::file_id m_file;
    bool m_has_file = false;

    void on_close() noexcept override { remove_file(); }

    void remove_file() noexcept {
        sys::file_id now;
        if (m_has_file && sys::stat_path(m_path.c_str(), now) == 0 && now.dev == m_file.dev &&
            now.ino == m_file.ino) {
            (void)sys::unlink_path(m_path.c_str());
        }
        m_has_file = false;
    }
};

task<unix_server> start_unix_server_impl(connection_fn fn, std::string path,
                                         unix_server_options opts) {
    check_stream_options(opts.stream);
    const unix_address at = make_unix_address(path, "bind");
    auto st = std::make_shared<unix_server_state>();
    st->m_loop = &event_loop::running();
    st->m_fn = std::move(fn);
    st->m_unix = true;
    st->m_max_connections = opts.max_connections;
    st->m_path = path;
    st->m_listeners.push_back(listening_socket{open_unix_socket(path), display(path), nullptr});
    const int fd = st->m_listeners[0].m_sock.native_handle();
    const std::string& shown = st->m_listeners[0].m_display;
    sys::file_id old;
    if (!is_abstract(path) && sys::stat_path(path.c_str(), old) == 0 && old.is_socket) {
        (void)sys::unlink_path(path.c_str()); // a stale socket file, as asyncio removes it
    }
    if (int r = sys::bind(fd, &at.sa, at.len); r < 0) {
        throw_net_error(-r, "bind", shown);
    }
    if (!is_abstract(path) && sys::stat_path(path.c_str(), st->m_file) == 0) {
        st->m_has_file = true;
    }
    if (int r = sys::listen(fd, opts.backlog); r < 0) {
        st->remove_file();
        throw_net_error(-r, "listen on", shown);
    }
    start_accepting(st);
    co_return unix_server(std::move(st));
}

} // namespace detail

const std::string& unix_server::path() const noexcept {
    static const std::string none;
    return m_state ? static_cast<const detail::unix_server_state&>(*m_state).m_path : none;
}

} // namespace coio
