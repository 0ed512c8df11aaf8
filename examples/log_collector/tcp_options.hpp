// log_collector/tcp_options.hpp - socket options coio's net layer does not
// offer yet, with setsockopt, in one place (so the swap is a few lines):
//  - set_keepalive: until coio::socket::set_keepalive lands;
//  - set_send_buffer: coio has no SO_SNDBUF option;
//  - abort_connection: until stream_writer gets asyncio's transport.abort().
#pragma once

#include <chrono>
#include <system_error>

namespace logcollect {

// TCP keepalive on a connected socket: the first probe after `idle` without
// traffic, then one every idle / 3 (at least 1 s), and the connection fails
// after 3 unanswered probes - a source that vanished (host down, a
// firewall that drops everything) is noticed in about 2 x idle. And, where
// the system has it (Linux TCP_USER_TIMEOUT), `unacked`: data we sent that the
// peer's TCP has not acknowledged for that long fails the connection too
// (keepalive does not probe while data is in flight). A zero duration leaves
// that part off. Returns the first error (errno text names the option).
std::error_code set_keepalive(int fd, std::chrono::seconds idle,
                              std::chrono::milliseconds unacked) noexcept;

// A fixed send buffer of `bytes` (SO_SNDBUF; Linux doubles it). The kernel
// would otherwise grow it up to tcp_wmem's maximum (4 MiB here): a source
// that never reads its ACKs could park a million of them there before a
// write waits.
std::error_code set_send_buffer(int fd, int bytes) noexcept;

// Reset the connection now (SO_LINGER 0, shutdown both ways): a write
// blocked on a peer that does not read fails at once, and the close that
// follows sends RST instead of waiting for ever to deliver what is queued.
// `fd` must be open (the caller still holds the connection).
void abort_connection(int fd) noexcept;

} // namespace logcollect
