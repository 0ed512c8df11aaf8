// lib/sys/socket.cpp
#include "sys/socket.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

namespace coio::sys {

const int family_ipv4 = AF_INET;
const int family_ipv6 = AF_INET6;
const int family_unix = AF_UNIX;

namespace {

struct option_spec {
    int level;
    int name;
    const char* set_text;
    const char* get_text;
};

option_spec spec(sockopt o) noexcept {
    switch (o) {
    case sockopt::reuse_address:
        return {SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)", "getsockopt(SO_REUSEADDR)"};
    case sockopt::reuse_port:
#if defined(SO_REUSEPORT)
        return {SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)", "getsockopt(SO_REUSEPORT)"};
#else
        return {-1, -1, "setsockopt(SO_REUSEPORT)", "getsockopt(SO_REUSEPORT)"};
#endif
    case sockopt::nodelay:
        return {IPPROTO_TCP, TCP_NODELAY, "setsockopt(TCP_NODELAY)", "getsockopt(TCP_NODELAY)"};
    case sockopt::v6only:
        return {IPPROTO_IPV6, IPV6_V6ONLY, "setsockopt(IPV6_V6ONLY)", "getsockopt(IPV6_V6ONLY)"};
    case sockopt::keepalive:
        return {SOL_SOCKET, SO_KEEPALIVE, "setsockopt(SO_KEEPALIVE)", "getsockopt(SO_KEEPALIVE)"};
    case sockopt::send_buffer:
        return {SOL_SOCKET, SO_SNDBUF, "setsockopt(SO_SNDBUF)", "getsockopt(SO_SNDBUF)"};
    case sockopt::receive_buffer:
        return {SOL_SOCKET, SO_RCVBUF, "setsockopt(SO_RCVBUF)", "getsockopt(SO_RCVBUF)"};
    case sockopt::broadcast:
        return {SOL_SOCKET, SO_BROADCAST, "setsockopt(SO_BROADCAST)", "getsockopt(SO_BROADCAST)"};
    case sockopt::incoming_cpu:
#if defined(SO_INCOMING_CPU)
        return {SOL_SOCKET, SO_INCOMING_CPU, "setsockopt(SO_INCOMING_CPU)",
                "getsockopt(SO_INCOMING_CPU)"};
#else
        return {-1, -1, "setsockopt(SO_INCOMING_CPU)", "getsockopt(SO_INCOMING_CPU)"};
#endif
    }
    return {-1, -1, "setsockopt", "getsockopt"};
}

int result(int rc) noexcept {
    return rc == 0 ? 0 : -errno;
}

} // namespace

const char* setsockopt_name(sockopt o) noexcept {
    return spec(o).set_text;
}
const char* getsockopt_name(sockopt o) noexcept {
    return spec(o).get_text;
}

int set_option(int fd, sockopt o, int value) noexcept {
    const option_spec s = spec(o);
    if (s.level < 0) {
        return -ENOPROTOOPT;
    }
    return set_int_option(fd, s.level, s.name, value);
}

int get_option(int fd, sockopt o, int& value) noexcept {
    const option_spec s = spec(o);
    if (s.level < 0) {
        return -ENOPROTOOPT;
    }
    return get_int_option(fd, s.level, s.name, value);
}

int set_int_option(int fd, int level, int name, int value) noexcept {
    return result(::setsockopt(fd, level, name, &value, sizeof value));
}

int get_int_option(int fd, int level, int name, int& value) noexcept {
    int v = 0;
    socklen_t len = sizeof v;
    if (::getsockopt(fd, level, name, &v, &len) != 0) {
        return -errno;
    }
    value = v;
    return 0;
}

int set_linger_reset(int fd) noexcept {
    ::linger l{};
    l.l_onoff = 1;
    l.l_linger = 0;
    return result(::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l));
}

int set_keepalive(int fd, int idle_seconds, int interval_seconds, int count) noexcept {
    if (int r = set_int_option(fd, SOL_SOCKET, SO_KEEPALIVE, 1); r < 0) {
        return r;
    }
#if defined(TCP_KEEPIDLE)
    constexpr int idle_name = TCP_KEEPIDLE;
#else
    constexpr int idle_name = TCP_KEEPALIVE; // macOS
#endif
    if (idle_seconds > 0) {
        if (int r = set_int_option(fd, IPPROTO_TCP, idle_name, idle_seconds); r < 0) {
            return r;
        }
    }
    if (interval_seconds > 0) {
        if (int r = set_int_option(fd, IPPROTO_TCP, TCP_KEEPINTVL, interval_seconds); r < 0) {
            return r;
        }
    }
    if (count > 0) {
        if (int r = set_int_option(fd, IPPROTO_TCP, TCP_KEEPCNT, count); r < 0) {
            return r;
        }
    }
    return 0;
}

int bind(int fd, const void* addr, std::uint32_t len) noexcept {
    return result(::bind(fd, static_cast<const sockaddr*>(addr), len));
}

int listen(int fd, int backlog) noexcept {
    return result(::listen(fd, backlog));
}

int connect(int fd, const void* addr, std::uint32_t len) noexcept {
    return result(::connect(fd, static_cast<const sockaddr*>(addr), len));
}

int local_name(int fd, void* addr, std::uint32_t& len) noexcept {
    socklen_t l = len;
    if (::getsockname(fd, static_cast<sockaddr*>(addr), &l) != 0) {
        return -errno;
    }
    len = l;
    return 0;
}

int peer_name(int fd, void* addr, std::uint32_t& len) noexcept {
    socklen_t l = len;
    if (::getpeername(fd, static_cast<sockaddr*>(addr), &l) != 0) {
        return -errno;
    }
    len = l;
    return 0;
}

int shutdown(int fd, shut how) noexcept {
    const int h = how == shut::read ? SHUT_RD : how == shut::write ? SHUT_WR : SHUT_RDWR;
    return result(::shutdown(fd, h));
}

void close(int fd) noexcept {
    ::close(fd);
}

int stat_path(const char* path, file_id& out) noexcept {
    struct stat st {};
    if (::stat(path, &st) != 0) {
        return -errno;
    }
    out.dev = static_cast<std::uint64_t>(st.st_dev);
    out.ino = static_cast<std::uint64_t>(st.st_ino);
    out.is_socket = S_ISSOCK(st.st_mode);
    return 0;
}

int unlink_path(const char* path) noexcept {
    return result(::unlink(path));
}

} // namespace coio::sys
