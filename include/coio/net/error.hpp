// coio/net/error.hpp - outcomes of socket operations.
//
// Expected outcomes (EOF, reset, refused, timeout, cancelled by close) come
// back as an io_status, never as an exception. Setup failures and misuse throw
// net_error, whose what() names the operation, the address and the errno text:
//   "connect to 127.0.0.1:9: Connection refused"
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <system_error>

namespace coio {

enum class io_status : unsigned char {
    ok,        // the operation did what it was asked
    eof,       // the peer closed its side (read returned 0 bytes)
    reset,     // ECONNRESET, EPIPE: the connection is gone
    refused,   // ECONNREFUSED
    timed_out, // ETIMEDOUT
    cancelled, // the socket was closed while the operation was in flight
    error,     // anything else: see the error_code
};

[[nodiscard]] std::string_view to_string(io_status s) noexcept;

struct io_result {
    io_status status = io_status::ok;
    std::size_t bytes = 0; // transferred before the status was reached
    std::error_code error; // set for every status but ok and eof

    [[nodiscard]] bool ok() const noexcept { return status == io_status::ok; }
    explicit operator bool() const noexcept { return ok(); }
    // "ok", "eof", or the status and the errno text: "reset: Connection reset by peer".
    [[nodiscard]] std::string message() const;
};

class net_error : public std::system_error {
public:
    // what() is "<what>: <strerror text>", e.g. "bind 127.0.0.1:80: Permission denied".
    net_error(std::error_code ec, const std::string& what) : std::system_error(ec, what) {}
};

namespace detail {
// Map a negative errno from an operation to a status and error code.
io_result make_io_result(int result_or_neg_errno, std::size_t bytes) noexcept;
// Sets out.status and out.error from a negative errno, for the result types
// that carry more than an io_result (accept_result, chunk_result,
// datagram_result).
template <class Result>
void set_failure(Result& out, int neg_errno) noexcept {
    const io_result e = make_io_result(neg_errno, 0);
    out.status = e.status;
    out.error = e.error;
}
[[noreturn]] void throw_net_error(int err, std::string_view op, std::string_view target);
} // namespace detail

} // namespace coio
