// lib/net/unix.cpp - Unix-domain stream sockets: connect_unix and the accept
// loop behind start_unix_server.
//
// coio::address is sized for IPv4/IPv6 (28 bytes; it sits in per-connection
// structures), so a sockaddr_un (110 bytes) never goes through it: the accept
// awaiter here keeps its own sockaddr_un, in the frame of the coroutine that
// awaits it, for as long as the backend may use it; connect is a plain call
// (see connect_unix).
#include "sys/fd.hpp"

#include <coio/detail/io_awaiter.hpp>
#include <coio/detail/wait_queue.hpp>
#include <coio/net/unix.hpp>
#include <coio/sleep.hpp>
#include <coio/timeout.hpp>

#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
    a.sa.sun_family = AF_UNIX;
    std::memcpy(a.sa.sun_path, path.data(), path.size());
    a.len = static_cast<std::uint32_t>(offsetof(sockaddr_un, sun_path) + path.size() +
                                       (is_abstract(path) ? 0 : 1));
    return a;
}

// The path in a sockaddr_un the kernel filled (len bytes of it).
std::string path_of(const sockaddr_un& sa, socklen_t len) {
    const auto head = static_cast<socklen_t>(offsetof(sockaddr_un, sun_path));
    if (len <= head) {
        return {}; // unbound
    }
    std::size_t n = std::min<std::size_t>(len - head, path_room);
    if (sa.sun_path[0] != '\0') {
        n = ::strnlen(sa.sun_path, n); // a file path: up to its '\0'
    }
    return std::string(sa.sun_path, n);
}

// Accept with room for a whole sockaddr_un, so the kernel never truncates it
// and the reported length never exceeds the buffer.
class unix_accept_awaiter : public detail::io_awaiter_base {
public:
    explicit unix_accept_awaiter(int fd) noexcept {
        m_op.m_code = detail::op_code::accept;
        m_op.m_fd = fd;
        m_op.m_addr = &m_peer;
        m_op.m_addr_len = &m_len;
    }
    accept_result await_resume() {
        const int r = take_result();
        accept_result out;
        if (r >= 0) {
            out.sock = socket(r);
            return out;
        }
        io_result e = detail::make_io_result(r, 0);
        out.status = e.status;
        out.error = e.error;
        return out;
    }

private:
    sockaddr_un m_peer{};
    std::uint32_t m_len = sizeof(sockaddr_un);
};

socket open_unix_socket(const std::string& path) {
    int fd = sys::open_stream_socket(AF_UNIX);
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
        if (::connect(s.native_handle(), reinterpret_cast<const sockaddr*>(&to.sa), to.len) == 0) {
            co_return s;
        }
        const int e = errno;
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
    socklen_t len = sizeof sa;
    if (::getsockname(s.native_handle(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        detail::throw_net_error(errno, "getsockname", {});
    }
    return path_of(sa, len);
}

std::string peer_unix_path(const socket& s) {
    sockaddr_un sa{};
    socklen_t len = sizeof sa;
    if (::getpeername(s.native_handle(), reinterpret_cast<sockaddr*>(&sa), &len) != 0) {
        detail::throw_net_error(errno, "getpeername", {});
    }
    return path_of(sa, len);
}

namespace detail {

struct unix_server_state {
    socket m_listener;
    std::string m_path;
    std::string m_display;
    // The socket file this server created (0/0 for an abstract name): close()
    // removes the path only while it is still this file.
    dev_t m_dev = 0;
    ino_t m_ino = 0;
    bool m_has_file = false;
    unix_server_options m_opts;
    connection_fn m_fn;
    event_loop* m_loop = nullptr;
    bool m_closed = false;
    server_stats m_stats;
    wait_queue m_closed_q; // serve_forever
    wait_queue m_idle_q;   // wait_closed
    wait_queue m_freed_q;  // a paused accept: a connection closed

    void connection_ended() noexcept {
        --m_stats.active;
        m_freed_q.notify_all();
        if (m_closed && m_stats.active == 0) {
            m_idle_q.notify_all();
        }
    }

    void remove_file() noexcept {
        struct stat now {};
        if (m_has_file && ::stat(m_path.c_str(), &now) == 0 && now.st_dev == m_dev &&
            now.st_ino == m_ino) {
            ::unlink(m_path.c_str());
        }
        m_has_file = false;
    }
};

namespace {

bool out_of_resources(int e) noexcept {
    return e == EMFILE || e == ENFILE || e == ENOBUFS || e == ENOMEM;
}

task<> serve_connection(std::shared_ptr<unix_server_state> st, socket s) {
    struct ended {
        unix_server_state& st;
        ~ended() { st.connection_ended(); }
    } guard{*st};
    co_await st->m_fn(std::move(s));
}

task<> wait_fd_freed(std::shared_ptr<unix_server_state> st) {
    co_await st->m_freed_q.wait();
}

// Out of fds: wait for the backoff or until one of this server's connections
// closes, whichever is first (server.cpp's policy, see docs/design.md).
task<> pause_accepting(std::shared_ptr<unix_server_state> st, std::chrono::milliseconds d) {
    try {
        co_await wait_for(wait_fd_freed(st), d);
    } catch (const timeout_error&) {
        // the backoff passed
    }
}

task<> accept_loop(std::shared_ptr<unix_server_state> st) {
    using namespace std::chrono_literals;
    std::chrono::milliseconds backoff{0};
    while (!st->m_closed) {
        accept_result r = co_await unix_accept_awaiter(st->m_listener.native_handle());
        if (r.ok()) {
            backoff = 0ms;
            ++st->m_stats.accepted;
            ++st->m_stats.active;
            st->m_loop->create_task(serve_connection(st, std::move(r.sock)),
                                    "connection on " + st->m_display);
            continue;
        }
        if (st->m_closed || r.status == io_status::cancelled) {
            break;
        }
        ++st->m_stats.accept_errors;
        const int e = r.error.value();
        if (out_of_resources(e)) {
            if (backoff == 0ms) {
                std::string msg = "accept on " + st->m_display + ": " + r.error.message() +
                                  "; accepting paused until a connection closes (at most 1 s)";
                st->m_loop->call_exception_handler({msg, "accept", nullptr});
            }
            backoff = std::clamp(backoff * 2, 10ms, 1000ms);
            ++st->m_stats.accept_pauses;
            co_await pause_accepting(st, backoff);
            continue;
        }
        if (e == EBADF || e == EINVAL || e == ENOTSOCK || e == EOPNOTSUPP) {
            std::string msg = "accept on " + st->m_display + ": " + r.error.message() +
                              "; the listening socket is unusable, server stopped";
            st->m_loop->call_exception_handler({msg, "accept", nullptr});
            break;
        }
        // ECONNABORTED and the like: that one connection failed.
    }
}

task<> wait_until_closed(std::shared_ptr<unix_server_state> st) {
    while (!st->m_closed) {
        co_await st->m_closed_q.wait();
    }
}

task<> wait_until_idle(std::shared_ptr<unix_server_state> st) {
    while (!st->m_closed || st->m_stats.active > 0) {
        co_await st->m_idle_q.wait();
    }
}

} // namespace

task<unix_server> start_unix_server_impl(connection_fn fn, std::string path,
                                         unix_server_options opts) {
    const unix_address at = make_unix_address(path, "bind");
    auto st = std::make_shared<unix_server_state>();
    st->m_loop = &event_loop::running();
    st->m_fn = std::move(fn);
    st->m_opts = opts;
    st->m_path = path;
    st->m_display = display(path);
    st->m_listener = open_unix_socket(path);
    struct stat old {};
    if (!is_abstract(path) && ::stat(path.c_str(), &old) == 0 && S_ISSOCK(old.st_mode)) {
        ::unlink(path.c_str()); // a stale socket file, as asyncio removes it
    }
    if (::bind(st->m_listener.native_handle(), reinterpret_cast<const sockaddr*>(&at.sa), at.len) !=
        0) {
        throw_net_error(errno, "bind", st->m_display);
    }
    struct stat made {};
    if (!is_abstract(path) && ::stat(path.c_str(), &made) == 0) {
        st->m_dev = made.st_dev;
        st->m_ino = made.st_ino;
        st->m_has_file = true;
    }
    if (::listen(st->m_listener.native_handle(), opts.backlog) != 0) {
        const int e = errno;
        st->remove_file();
        throw_net_error(e, "listen on", st->m_display);
    }
    st->m_loop->create_task(accept_loop(st), "accept on " + st->m_display);
    co_return unix_server(std::move(st));
}

} // namespace detail

const std::string& unix_server::path() const noexcept {
    static const std::string none;
    return m_state ? m_state->m_path : none;
}

bool unix_server::is_serving() const noexcept {
    return m_state && !m_state->m_closed;
}

server_stats unix_server::stats() const noexcept {
    return m_state ? m_state->m_stats : server_stats{};
}

void unix_server::close() noexcept {
    if (!m_state || m_state->m_closed) {
        return;
    }
    detail::unix_server_state& st = *m_state;
    st.m_closed = true;
    st.m_listener.close(); // a pending accept completes as cancelled
    st.remove_file();
    st.m_freed_q.notify_all();
    st.m_closed_q.notify_all();
    if (st.m_stats.active == 0) {
        st.m_idle_q.notify_all();
    }
}

task<> unix_server::serve_forever() {
    return detail::wait_until_closed(m_state);
}

task<> unix_server::wait_closed() {
    return detail::wait_until_idle(m_state);
}

} // namespace coio
