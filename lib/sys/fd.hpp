// lib/sys/fd.hpp - the sys layer: the only place (with the backends) that
// calls libc I/O. RAII fd, errno text, socket creation.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>
#include <utility>

namespace coio::sys {

class unique_fd {
public:
    unique_fd() noexcept = default;
    explicit unique_fd(int fd) noexcept : m_fd(fd) {}
    unique_fd(unique_fd&& o) noexcept : m_fd(std::exchange(o.m_fd, -1)) {}
    unique_fd& operator=(unique_fd&& o) noexcept {
        if (this != &o) {
            reset(std::exchange(o.m_fd, -1));
        }
        return *this;
    }
    unique_fd(const unique_fd&) = delete;
    unique_fd& operator=(const unique_fd&) = delete;
    ~unique_fd() { reset(); }

    [[nodiscard]] int get() const noexcept { return m_fd; }
    [[nodiscard]] int release() noexcept { return std::exchange(m_fd, -1); }
    explicit operator bool() const noexcept { return m_fd >= 0; }
    void reset(int fd = -1) noexcept;

private:
    int m_fd = -1;
};

inline std::error_code errno_code(int e) noexcept {
    return {e, std::system_category()};
}

// "<op>: <strerror(e)>" as a std::runtime_error message.
std::string errno_message(std::string_view op, int e);

// socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC). Returns fd or -errno.
// Where socket() takes no such flags (macOS), prepare_socket sets them after.
int open_stream_socket(int family) noexcept;
// The same with SOCK_DGRAM (UDP for AF_INET/AF_INET6).
int open_datagram_socket(int family) noexcept;

// socketpair(AF_UNIX, SOCK_STREAM) with both ends set up as open_stream_socket
// sets up its socket. Returns 0 or -errno.
int open_stream_socket_pair(int (&fds)[2]) noexcept;

// For systems whose socket(), socketpair() and accept() cannot set the flags
// atomically (macOS): O_NONBLOCK, FD_CLOEXEC and, where send() has no
// MSG_NOSIGNAL, SO_NOSIGPIPE. Returns 0 or -errno. Not called on Linux.
int prepare_socket(int fd) noexcept;

// One non-blocking send(MSG_NOSIGNAL) outside any backend, for a stream
// writer whose buffer is empty. Returns bytes sent or -errno (-EAGAIN: none).
long try_send(int fd, const void* data, std::size_t len) noexcept;
// The same with write(2), for a pipe writer (the fd is O_NONBLOCK). A pipe
// whose reader is gone raises SIGPIPE: lib/net/sigpipe.hpp has the policy.
long try_write(int fd, const void* data, std::size_t len) noexcept;

// What an fd refers to (fstat): the kinds a pipe stream accepts, or other.
enum class fd_kind : unsigned char { fifo, character_device, socket, other };
// The kind, or -errno (EBADF) as the second member.
struct fd_kind_result {
    fd_kind kind = fd_kind::other;
    int error = 0;
};
fd_kind_result kind_of(int fd) noexcept;
// Turns O_NONBLOCK on (it belongs to the open file description, which a
// duplicate or a terminal shares). 0 or -errno.
int set_nonblocking(int fd) noexcept;
// pipe(2) with FD_CLOEXEC on both ends (pipe2 where it exists): fds[0]
// reads, fds[1] writes. Neither end is non-blocking. 0 or -errno.
int open_pipe(int (&fds)[2]) noexcept;
// fcntl(F_DUPFD_CLOEXEC): a close-on-exec duplicate numbered at least `min`,
// or -errno.
int dup_cloexec(int fd, int min) noexcept;

} // namespace coio::sys
