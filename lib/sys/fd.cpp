// lib/sys/fd.cpp
#include "sys/fd.hpp"

#include <fcntl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

// macOS has neither MSG_NOSIGNAL nor SOCK_NONBLOCK / SOCK_CLOEXEC: every
// socket coio creates or accepts gets SO_NOSIGPIPE instead (prepare_socket),
// and send() passes no flag for it.
#if defined(MSG_NOSIGNAL)
#define COIO_MSG_NOSIGNAL MSG_NOSIGNAL
#elif defined(SO_NOSIGPIPE)
#define COIO_MSG_NOSIGNAL 0
#else
#error "coio needs MSG_NOSIGNAL or SO_NOSIGPIPE to keep send() from raising SIGPIPE"
#endif
// glibc defines SOCK_NONBLOCK as an enumerator too: test it with defined() only.
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC)
#define COIO_SOCK_FLAGS (SOCK_NONBLOCK | SOCK_CLOEXEC)
#else
#define COIO_SOCK_FLAGS 0 // set by prepare_socket after the call
#endif
#if defined(SOCK_NONBLOCK) && defined(SOCK_CLOEXEC) && defined(MSG_NOSIGNAL)
#define COIO_PREPARE_SOCKETS 0 // Linux, FreeBSD: the socket call sets everything
#else
#define COIO_PREPARE_SOCKETS 1
#endif

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

// A signal that interrupts the call before anything moved (EINTR) is not an
// outcome: the call is made again.
long try_send(int fd, const void* data, std::size_t len) noexcept {
    ssize_t n = 0;
    do {
        n = ::send(fd, data, len, COIO_MSG_NOSIGNAL | MSG_DONTWAIT);
    } while (n < 0 && errno == EINTR);
    return n >= 0 ? static_cast<long>(n) : -static_cast<long>(errno);
}

long try_write(int fd, const void* data, std::size_t len) noexcept {
    ssize_t n = 0;
    do {
        n = ::write(fd, data, len);
    } while (n < 0 && errno == EINTR);
    return n >= 0 ? static_cast<long>(n) : -static_cast<long>(errno);
}

fd_kind_result kind_of(int fd) noexcept {
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        return {fd_kind::other, -errno};
    }
    if (S_ISFIFO(st.st_mode)) {
        return {fd_kind::fifo, 0};
    }
    if (S_ISCHR(st.st_mode)) {
        return {fd_kind::character_device, 0};
    }
    if (S_ISSOCK(st.st_mode)) {
        return {fd_kind::socket, 0};
    }
    return {fd_kind::other, 0};
}

int set_nonblocking(int fd) noexcept {
    const int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0) {
        return -errno;
    }
    if ((fl & O_NONBLOCK) == 0 && ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0) {
        return -errno;
    }
    return 0;
}

int open_pipe(int (&fds)[2]) noexcept {
#if defined(__linux__) || defined(__FreeBSD__) || defined(__NetBSD__) || defined(__OpenBSD__) ||   \
    defined(__DragonFly__)
    if (::pipe2(fds, O_CLOEXEC) != 0) {
        return -errno;
    }
#else
    // macOS: no pipe2. A spawn on another thread between pipe() and fcntl()
    // may inherit the ends, as with sockets there (open_socket below).
    if (::pipe(fds) != 0) {
        return -errno;
    }
    for (int fd : fds) {
        if (::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
            const int e = errno;
            ::close(fds[0]);
            ::close(fds[1]);
            return -e;
        }
    }
#endif
    return 0;
}

int dup_cloexec(int fd, int min) noexcept {
    const int r = ::fcntl(fd, F_DUPFD_CLOEXEC, min);
    return r >= 0 ? r : -errno;
}

int prepare_socket(int fd) noexcept {
    int fl = ::fcntl(fd, F_GETFL);
    if (fl < 0 || ::fcntl(fd, F_SETFL, fl | O_NONBLOCK) != 0 ||
        ::fcntl(fd, F_SETFD, FD_CLOEXEC) != 0) {
        return -errno;
    }
#if !defined(MSG_NOSIGNAL)
    int one = 1;
    if (::setsockopt(fd, SOL_SOCKET, SO_NOSIGPIPE, &one, sizeof one) != 0) {
        return -errno;
    }
#endif
    return 0;
}

namespace {
// Without SOCK_CLOEXEC a fork+exec on another thread between socket() and
// prepare_socket() can inherit the fd; macOS offers no atomic alternative.
int open_socket(int family, int type) noexcept {
    int fd = ::socket(family, type | COIO_SOCK_FLAGS, 0);
    if (fd < 0) {
        return -errno;
    }
#if COIO_PREPARE_SOCKETS
    if (int r = prepare_socket(fd); r < 0) {
        ::close(fd);
        return r;
    }
#endif
    return fd;
}
} // namespace

int open_stream_socket(int family) noexcept {
    return open_socket(family, SOCK_STREAM);
}

int open_datagram_socket(int family) noexcept {
    return open_socket(family, SOCK_DGRAM);
}

int open_stream_socket_pair(int (&fds)[2]) noexcept {
    if (::socketpair(AF_UNIX, SOCK_STREAM | COIO_SOCK_FLAGS, 0, fds) != 0) {
        return -errno;
    }
#if COIO_PREPARE_SOCKETS
    for (int fd : fds) {
        if (int r = prepare_socket(fd); r < 0) {
            ::close(fds[0]);
            ::close(fds[1]);
            return r;
        }
    }
#endif
    return 0;
}

} // namespace coio::sys
