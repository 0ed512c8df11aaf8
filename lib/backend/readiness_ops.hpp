// lib/backend/readiness_ops.hpp - the non-blocking syscalls behind the
// readiness backends (epoll.cpp, kqueue.cpp): each tries an operation once and
// returns its result or -errno; -EAGAIN means "park it and wait for the fd".
// recv_pooled is not here: it needs the backend's buffer pool.
#pragma once

#include "backend/backend.hpp"
#include "sys/fd.hpp"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstddef>
#include <cstdint>

namespace coio::detail::readiness {

// macOS has no MSG_NOSIGNAL: every socket coio creates or accepts carries
// SO_NOSIGPIPE instead (sys::prepare_socket).
#if defined(MSG_NOSIGNAL)
constexpr int send_flags = MSG_NOSIGNAL;
#else
constexpr int send_flags = 0;
#endif

// Connect: 0 = not started, 1 = in progress (wait for writable, read SO_ERROR).
constexpr std::uint8_t connect_in_progress = 1;

inline int accept_socket(io_op& op) noexcept {
    socklen_t len = *op.m_addr_len;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    // FreeBSD, NetBSD, OpenBSD, DragonFly: atomic, and they have MSG_NOSIGNAL.
    int fd =
        ::accept4(op.m_fd, static_cast<sockaddr*>(op.m_addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
#else
    // macOS: no accept4; set O_NONBLOCK, FD_CLOEXEC and SO_NOSIGPIPE after.
    int fd = ::accept(op.m_fd, static_cast<sockaddr*>(op.m_addr), &len);
    if (fd < 0) {
        return -errno;
    }
    if (int r = sys::prepare_socket(fd); r < 0) {
        ::close(fd);
        return r;
    }
#endif
    *op.m_addr_len = len;
    return fd;
}

inline int perform(io_op& op) noexcept {
    switch (op.m_code) {
    case op_code::recv: {
        ssize_t n = ::recv(op.m_fd, op.m_buf, std::min<std::size_t>(op.m_len, INT_MAX), 0);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::send: {
        ssize_t n = ::send(op.m_fd, op.m_buf, std::min<std::size_t>(op.m_len, INT_MAX), send_flags);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::recvmsg: {
        ssize_t n = ::recvmsg(op.m_fd, static_cast<msghdr*>(op.m_buf), 0);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::sendmsg: {
        ssize_t n = ::sendmsg(op.m_fd, static_cast<const msghdr*>(op.m_buf), send_flags);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::accept:
        return accept_socket(op);
    case op_code::recv_pooled:
        return -EINVAL; // the backend's attempt() handles it
    case op_code::connect: {
        if (op.m_state != connect_in_progress) {
            if (::connect(op.m_fd, static_cast<const sockaddr*>(op.m_addr), *op.m_addr_len) == 0) {
                return 0;
            }
            if (errno != EINPROGRESS) {
                return -errno;
            }
            op.m_state = connect_in_progress;
            return -EAGAIN;
        }
        int err = 0;
        socklen_t len = sizeof err;
        if (::getsockopt(op.m_fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) {
            return -errno;
        }
        return -err;
    }
    }
    return -EINVAL;
}

inline bool is_write_side(op_code c) noexcept {
    return c == op_code::send || c == op_code::sendmsg || c == op_code::connect;
}

} // namespace coio::detail::readiness
