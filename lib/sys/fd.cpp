// lib/sys/fd.cpp
#include "sys/fd.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace coio::sys {

void unique_fd::reset(int fd) noexcept {
    if (m_fd >= 0) {
        ::close(m_fd); // the fd is gone even on EINTR (Linux); never retry close
    }
    m_fd = fd;
}

std::string errno_message(std::string_view op, int e) {
    std::string out(op);
    out += ": ";
    out += std::strerror(e);
    return out;
}

long try_send(int fd, const void* data, std::size_t len) noexcept {
    ssize_t n = ::send(fd, data, len, MSG_NOSIGNAL | MSG_DONTWAIT);
    return n >= 0 ? static_cast<long>(n) : -static_cast<long>(errno);
}

int open_stream_socket(int family) noexcept {
    int fd = ::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    return fd >= 0 ? fd : -errno;
}

} // namespace coio::sys
