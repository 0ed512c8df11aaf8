// lib/net/stream_transport.hpp - a layer between a stream and its socket that
// changes the bytes: TLS (lib/tls/). A plain stream has none - its
// stream_state holds a null pointer, so its read and write paths pay one
// pointer test and no virtual call.
//
// The stream keeps doing the socket I/O (read_chunk, the background flush,
// half-close, close, timeouts); at a few hook points (stream.cpp,
// stream_state.cpp, stream_tls.cpp in lib/net/) it hands the bytes to the
// transport:
//   - each chunk read goes to on_data(), which appends the plaintext to the
//     reader's buffer (the chunk's lease is given back right after);
//   - write() encrypts into the writer's buffer, which the flush sends;
//   - write_eof() / close() append the close_notify before the TCP
//     half-close / close, and close() is bounded by shutdown_timeout();
//   - start_tls() runs handshake(), which uses the socket directly while no
//     read and no flush is in progress.
// Anything the transport must send (handshake messages, alerts, key update
// replies) is appended to the `out` buffer it is given; the stream sends it.
#pragma once

#include "net/byte_buffer.hpp"

#include <coio/net/socket.hpp>
#include <coio/net/tls.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <memory>
#include <optional>
#include <string_view>
#include <system_error>

namespace coio::detail {

class stream_transport {
public:
    stream_transport() = default;
    stream_transport(const stream_transport&) = delete;
    stream_transport& operator=(const stream_transport&) = delete;
    virtual ~stream_transport() = default;

    // Runs the handshake on *sock, sending from and receiving into the
    // stream's buffers (both pointers stay valid until it ends: the caller's
    // frame owns the stream). Plaintext that came with the last handshake
    // records is appended to *in, and plaintext written meanwhile is encrypted
    // into *out. Throws tls_error (handshake, verify, handshake_timeout) or
    // cancelled_error.
    virtual task<> handshake(socket* sock, byte_buffer* in, byte_buffer* out) = 0;

    // Bytes read from the socket: plaintext appended to `in`, anything to send
    // to `out`. Returns true once the peer's close_notify arrived (then `in`
    // gets nothing more). Throws tls_error (protocol) naming the peer.
    virtual bool on_data(std::string_view bytes, byte_buffer& in, byte_buffer& out) = 0;
    // The socket reported EOF.
    virtual void on_eof() noexcept = 0;

    // Plaintext to send: its records appended to `out` (kept until the
    // handshake is done if it is not). Returns the error if the session failed.
    virtual std::error_code write(std::string_view data, byte_buffer& out) = 0;
    // The close_notify, appended to `out` (once; not before the handshake).
    virtual void write_eof(byte_buffer& out) noexcept = 0;
    [[nodiscard]] virtual std::chrono::milliseconds shutdown_timeout() const noexcept = 0;

    // Nothing until the handshake is done.
    [[nodiscard]] virtual std::optional<tls_info> info() const = 0;
};

// A TLS transport for a connection to or from `peer` (lib/tls/; without
// OpenSSL it throws tls_error unavailable). Throws std::invalid_argument for
// an empty context, tls_error (config) if the session cannot be set up.
std::unique_ptr<stream_transport> make_tls_transport(const tls_context& ctx, const tls_options& o,
                                                     const address& peer);

} // namespace coio::detail
