// lib/backend/readiness_ops.hpp - the non-blocking syscalls behind the
// readiness backends (epoll.cpp, kqueue.cpp): each tries an operation once and
// returns its result or -errno; -EAGAIN means "park it and wait for the fd".
// recv_pooled and read_pooled are not here: they need the backend's buffer
// pool (buffer_pool.hpp, recv_into_pool).
#pragma once

#include "backend/backend.hpp"
#include "sys/fd.hpp"

#include <poll.h>
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

// io_op::m_state bit of a connect under way (wait for writable, read
// SO_ERROR). Bits 0 and 1 belong to readiness.hpp.
constexpr std::uint8_t connect_in_progress = 4;

inline int accept_socket(io_op& op) noexcept {
    const io_sockaddr& peer = op.m_arg.peer;
    socklen_t len = *peer.len;
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
    // FreeBSD, NetBSD, OpenBSD, DragonFly: atomic, and they have MSG_NOSIGNAL.
    int fd =
        ::accept4(op.m_fd, static_cast<sockaddr*>(peer.addr), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
        return -errno;
    }
#else
    // macOS: no accept4; set O_NONBLOCK, FD_CLOEXEC and SO_NOSIGPIPE after.
    int fd = ::accept(op.m_fd, static_cast<sockaddr*>(peer.addr), &len);
    if (fd < 0) {
        return -errno;
    }
    if (int r = sys::prepare_socket(fd); r < 0) {
        ::close(fd);
        return r;
    }
#endif
    *peer.len = len;
    return fd;
}

inline int perform(io_op& op) noexcept {
    switch (op.m_code) {
    case op_code::recv: {
        const io_buffer& b = op.m_arg.buf;
        ssize_t n = ::recv(op.m_fd, b.data, std::min<std::size_t>(b.size, INT_MAX), 0);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::send: {
        const io_buffer& b = op.m_arg.buf;
        ssize_t n = ::send(op.m_fd, b.data, std::min<std::size_t>(b.size, INT_MAX), send_flags);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::recvmsg: {
        ssize_t n = ::recvmsg(op.m_fd, static_cast<msghdr*>(op.m_arg.msg), 0);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::sendmsg: {
        ssize_t n = ::sendmsg(op.m_fd, static_cast<const msghdr*>(op.m_arg.msg), send_flags);
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::read: {
        const io_buffer& b = op.m_arg.buf;
        ssize_t n = ::read(op.m_fd, b.data, std::min<std::size_t>(b.size, INT_MAX));
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::write: {
        // A pipe whose reader is gone raises SIGPIPE here (write() has no
        // MSG_NOSIGNAL): lib/net/pipe.cpp keeps it blocked on the loop's
        // thread while pipe writers exist, and discards it.
        const io_buffer& b = op.m_arg.buf;
        ssize_t n = ::write(op.m_fd, b.data, std::min<std::size_t>(b.size, INT_MAX));
        return n >= 0 ? static_cast<int>(n) : -errno;
    }
    case op_code::wait_readable: {
        pollfd p{op.m_fd, POLLIN, 0};
        const int n = ::poll(&p, 1, 0);
        if (n < 0) {
            return -errno;
        }
        if (n > 0 && (p.revents & POLLNVAL) != 0) {
            return -EBADF;
        }
        return n > 0 ? 0 : -EAGAIN;
    }
    case op_code::accept:
        return accept_socket(op);
    case op_code::recv_pooled:
    case op_code::read_pooled:
        return -EINVAL; // the backend's attempt() handles them
    case op_code::connect: {
        if ((op.m_state & connect_in_progress) == 0) {
            const io_sockaddr& to = op.m_arg.peer;
            if (::connect(op.m_fd, static_cast<const sockaddr*>(to.addr), *to.len) == 0) {
                return 0;
            }
            // EINTR: interrupted, the connection goes on in the background
            // (POSIX) - wait for writable as for EINPROGRESS.
            if (errno != EINPROGRESS && errno != EINTR) {
                return -errno;
            }
            op.m_state |= connect_in_progress;
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

// SOCK_STREAM (TCP, Unix stream): a short transfer means the queue was empty.
inline bool is_stream_socket(int fd) noexcept {
    int type = 0;
    socklen_t len = sizeof type;
    return ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
}

} // namespace coio::detail::readiness
