// lib/net/socket_ops.hpp - fd-level socket calls shared by coio::socket and
// coio::datagram_socket (and the Unix-socket code and the servers): each
// throws net_error naming the call and the address, as the public setup
// methods promise. They reach the OS through lib/sys.
#pragma once

#include "sys/socket.hpp"

#include <coio/net/address.hpp>

#include <string_view>

namespace coio::detail {

void set_int_option(int fd, int level, int name, int value, std::string_view what);
void set_option(int fd, sys::sockopt o, int value);
[[nodiscard]] int get_option(int fd, sys::sockopt o);
void bind_fd(int fd, const address& a);
// getsockname / getpeername. A Unix-domain name is longer than address's
// storage: the kernel truncates it, and the family reads as none.
address local_address_of(int fd);
address peer_address_of(int fd);
// Close `fd`: through the running loop (in-flight operations on it complete
// as cancelled), or directly when no loop runs on this thread.
void close_socket_fd(int fd) noexcept;
// The same after SO_LINGER 0, so that a TCP peer gets a reset (RST).
void abort_socket_fd(int fd) noexcept;

} // namespace coio::detail
