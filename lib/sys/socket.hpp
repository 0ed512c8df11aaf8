// lib/sys/socket.hpp - the sys layer's socket calls for lib/net: options,
// bind/listen/connect, names, shutdown, close, and the socket file of a Unix
// listener. Each wraps one or two libc calls and returns 0 (or a value >= 0)
// on success and -errno on failure: no exceptions, no OS types, so lib/net
// names what failed and sys stays a thin wrapper (mio's sys/unix style).
#pragma once

#include <cstdint>

namespace coio::sys {

// Address families for open_stream_socket (fd.hpp): AF_INET, AF_INET6, AF_UNIX.
extern const int family_ipv4;
extern const int family_ipv6;
extern const int family_unix;

// Options lib/net sets by name, so that it needs no <netinet/tcp.h>.
enum class sockopt : std::uint8_t {
    reuse_address,  // SO_REUSEADDR
    reuse_port,     // SO_REUSEPORT
    nodelay,        // TCP_NODELAY
    v6only,         // IPV6_V6ONLY
    keepalive,      // SO_KEEPALIVE
    send_buffer,    // SO_SNDBUF
    receive_buffer, // SO_RCVBUF
    broadcast,      // SO_BROADCAST
    incoming_cpu,   // SO_INCOMING_CPU (Linux; elsewhere set_option fails with ENOPROTOOPT)
};

// The option's name as a message names it: "setsockopt(SO_REUSEADDR)".
const char* setsockopt_name(sockopt o) noexcept;
const char* getsockopt_name(sockopt o) noexcept;

int set_option(int fd, sockopt o, int value) noexcept;
int get_option(int fd, sockopt o, int& value) noexcept;
// Any integer option (socket::set_option / get_option).
int set_int_option(int fd, int level, int name, int value) noexcept;
int get_int_option(int fd, int level, int name, int& value) noexcept;

// SO_LINGER {on, 0 s}: the next close() resets the connection (RST) and
// drops what is unsent, instead of a FIN after the send queue.
int set_linger_reset(int fd) noexcept;
// SO_KEEPALIVE on, with the idle time before the first probe, the time
// between probes and the probes before the connection is dropped; a zero
// leaves that one at the system default (Linux: 7200 s, 75 s, 9).
int set_keepalive(int fd, int idle_seconds, int interval_seconds, int count) noexcept;

// addr points to a sockaddr of len bytes.
int bind(int fd, const void* addr, std::uint32_t len) noexcept;
int listen(int fd, int backlog) noexcept;
// A plain connect(2) (Unix streams and datagram sockets; TCP connects go
// through the backends).
int connect(int fd, const void* addr, std::uint32_t len) noexcept;
// getsockname / getpeername into addr (room for len bytes); len becomes the
// address's full length, which may exceed the room (the kernel truncates).
int local_name(int fd, void* addr, std::uint32_t& len) noexcept;
int peer_name(int fd, void* addr, std::uint32_t& len) noexcept;

enum class shut : std::uint8_t { read, write, both };
int shutdown(int fd, shut how) noexcept;
// close(2), never retried (the fd is gone even on EINTR on Linux).
void close(int fd) noexcept;

// What a Unix listener needs to know about the file at its path.
struct file_id {
    std::uint64_t dev = 0;
    std::uint64_t ino = 0;
    bool is_socket = false;
};
// stat(2) of path; 0 and `out`, or -errno.
int stat_path(const char* path, file_id& out) noexcept;
int unlink_path(const char* path) noexcept;

} // namespace coio::sys
