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

} // namespace coio::sys
