// log_collector/tcp_options.cpp - keepalive and abort with setsockopt
// (tcp_options.hpp).
#include "tcp_options.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>

namespace logcollect {

namespace {

std::error_code set_int(int fd, int level, int name, int value) noexcept {
    if (::setsockopt(fd, level, name, &value, sizeof value) != 0) {
        return {errno, std::generic_category()};
    }
    return {};
}

} // namespace

std::error_code set_keepalive(int fd, std::chrono::seconds idle,
                              std::chrono::milliseconds unacked) noexcept {
    std::error_code ec;
    if (idle.count() > 0) {
        const int secs = static_cast<int>(std::min<std::chrono::seconds::rep>(idle.count(), 32767));
        ec = set_int(fd, SOL_SOCKET, SO_KEEPALIVE, 1);
#if defined(TCP_KEEPIDLE)
        if (!ec) {
            ec = set_int(fd, IPPROTO_TCP, TCP_KEEPIDLE, secs);
        }
#elif defined(TCP_KEEPALIVE) // macOS
        if (!ec) {
            ec = set_int(fd, IPPROTO_TCP, TCP_KEEPALIVE, secs);
        }
#endif
#if defined(TCP_KEEPINTVL) && defined(TCP_KEEPCNT)
        if (!ec) {
            ec = set_int(fd, IPPROTO_TCP, TCP_KEEPINTVL, std::max(1, secs / 3));
        }
        if (!ec) {
            ec = set_int(fd, IPPROTO_TCP, TCP_KEEPCNT, 3);
        }
#endif
    }
#if defined(TCP_USER_TIMEOUT)
    if (!ec && unacked.count() > 0) {
        const auto ms = std::min<std::chrono::milliseconds::rep>(unacked.count(), 0x7fffffff);
        ec = set_int(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(ms));
    }
#else
    (void)unacked;
#endif
    return ec;
}

std::error_code set_send_buffer(int fd, int bytes) noexcept {
    return set_int(fd, SOL_SOCKET, SO_SNDBUF, bytes);
}

void abort_connection(int fd) noexcept {
    const linger l{1, 0};
    (void)::setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    (void)::shutdown(fd, SHUT_RDWR);
}

} // namespace logcollect
