// coio/net/stream.hpp - buffered streams over a TCP connection (asyncio's
// StreamReader / StreamWriter).
//
//   auto [reader, writer] = co_await coio::open_connection("127.0.0.1", port);
//   std::string line = co_await reader.readline();
//   writer.write("ACK\n");
//   co_await writer.drain();
//
// The reader and the writer share one connection; it is closed when the writer
// is closed (after its buffer is flushed) or when both are gone. Each method
// that suspends returns a task that keeps the connection alive until it ends,
// so a reader or writer may be moved or dropped while its operation runs.
//
// Reader: reads with socket::read_chunk, so it holds no buffer of its own while
// it waits: lines are cut straight out of the loop's pooled buffer, and only a
// tail that is not consumed yet (a partial line, or what a read left over) is
// copied into the reader's own buffer, which is freed when it empties. Memory
// stays bounded by `limit` (default 64 KiB) plus one chunk (a read buffer: 4 KiB, 64 KiB on a bulk
// transfer) whatever the peer sends. At most one read may be in progress at a time
// (std::logic_error otherwise, as asyncio raises RuntimeError).
//
// Writer: write() never suspends; it sends at once what the kernel takes and
// buffers the rest, which a background flush sends in order. drain() suspends
// while the buffer is above the high-water mark, until it falls to the
// low-water mark (defaults 64 KiB / 16 KiB); any number of tasks may drain()
// at once. A failed connection makes drain() throw net_error.
//
// Timeouts (stream_options; all off by default, as asyncio has none; a
// server gives every connection its server_options::stream, and
// stream_writer::set_timeouts changes one connection's). Each is a duration
// without progress, restarted by every byte that moves, not a total (bound a
// whole exchange with coio::wait_for or coio::timeout):
//  - read_timeout: a read operation (read, readline, readuntil, readexactly)
//    has waited that long and no data arrived (nginx's client_body_timeout).
//    The read side is shut (shutdown SHUT_RD) and the read throws net_error
//    with errc::timed_out naming the peer and the timeout; so does every
//    later read. Writing still works, so a server can answer before it
//    closes. Only waiting counts: no timer runs while the handler works.
//  - write_timeout: the background flush (buffered data, drain()) made no
//    progress for that long - the peer does not read (nginx's
//    send_timeout). The connection is reset (RST, unsent data dropped):
//    drain() and every read throw net_error(timed_out); write() is ignored.
//  - idle_timeout: no byte moved either way for that long, whether or not a
//    read waits (nginx's keepalive_timeout). The connection is closed (a FIN,
//    or a reset if unsent data remains); reads and drain() throw
//    net_error(timed_out), write() is ignored.
// A connection without timeouts has no timer and does no clock reads. With
// any, it has one timer node, allocated once, re-armed lazily (a clock read
// per read or write, no timer-heap work per operation; lib/net/watchdog.hpp).
// The timer ends when the socket is closed (a closing flush is still bounded
// by write_timeout).
//
// TLS (tls.hpp): the same reader and writer over an encrypted connection,
// from open_connection / start_server with a tls_context or after
// writer.start_tls(). Then the reader's buffer holds plaintext (its bound
// grows by one TLS record, 16 KiB, over a plain stream's), the writer's
// buffer holds records and its water marks count their bytes, write_eof()
// sends the close_notify before the TCP half-close, and close() sends it
// after the buffered data.
#pragma once

#include <coio/net/address.hpp>
#include <coio/net/error.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/tls.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace coio {

// The separator was not found within `limit` bytes (asyncio.LimitOverrunError;
// readline raises it where asyncio raises ValueError). consumed() is how many
// bytes were examined.
class limit_overrun_error : public std::runtime_error {
public:
    limit_overrun_error(const std::string& what, std::size_t consumed)
        : std::runtime_error(what), m_consumed(consumed) {}
    [[nodiscard]] std::size_t consumed() const noexcept { return m_consumed; }

private:
    std::size_t m_consumed;
};

// EOF came before the requested bytes or separator (asyncio.IncompleteReadError).
class incomplete_read_error : public std::runtime_error {
public:
    incomplete_read_error(std::string partial, std::size_t expected);
    [[nodiscard]] const std::string& partial() const noexcept { return m_partial; }
    // Bytes asked for by readexactly; 0 for readuntil.
    [[nodiscard]] std::size_t expected() const noexcept { return m_expected; }

private:
    std::string m_partial;
    std::size_t m_expected;
};

struct stream_options {
    std::size_t limit = 64 * 1024;      // longest line/chunk readuntil accepts
    std::size_t high_water = 64 * 1024; // drain() waits above this
    std::size_t low_water = 16 * 1024;  // ...until the buffer is down to this
    // Timeouts, zero for none (the default): see "Timeouts" above.
    std::chrono::milliseconds read_timeout{0};
    std::chrono::milliseconds write_timeout{0};
    std::chrono::milliseconds idle_timeout{0};
    // Read in small (4 KiB) chunks only (socket::read_chunk's
    // chunk_size::small): a reader that asks for little at a time - a server
    // of many connections that each send a flood - then holds at most 4 KiB
    // beyond what it asked for. By default a connection whose reads fill a
    // small buffer reads 64 KiB at a time, as bulk transfers want.
    bool small_reads = false;
};

// One connection's timeouts (stream_writer::set_timeouts), zero for none.
struct stream_timeouts {
    std::chrono::milliseconds read_timeout{0};
    std::chrono::milliseconds write_timeout{0};
    std::chrono::milliseconds idle_timeout{0};
};

namespace detail {
struct stream_state;
}

class stream_reader {
public:
    stream_reader() noexcept = default;
    explicit stream_reader(std::shared_ptr<detail::stream_state> s) noexcept : m_s(std::move(s)) {}

    // Up to n bytes: what is buffered, else one read's worth; "" at EOF.
    // n < 0 reads until EOF (unbounded, as asyncio's read(-1)).
    [[nodiscard]] task<std::string> read(std::ptrdiff_t n = -1);
    // One line including its '\n'; at EOF the partial last line, then "".
    // A line longer than limit throws limit_overrun_error and discards that
    // line (or, if its end has not arrived, what is buffered) - the reader
    // stays usable, exactly as asyncio's readline.
    [[nodiscard]] task<std::string> readline();
    // Data up to and including `separator`. limit_overrun_error leaves the data
    // buffered; incomplete_read_error at EOF carries what was there.
    [[nodiscard]] task<std::string> readuntil(std::string separator = "\n");
    // Exactly n bytes, or incomplete_read_error carrying the partial bytes.
    [[nodiscard]] task<std::string> readexactly(std::size_t n);

    // EOF was received and the buffer is empty.
    [[nodiscard]] bool at_eof() const noexcept;
    [[nodiscard]] std::size_t buffered() const noexcept;
    [[nodiscard]] std::size_t limit() const noexcept;

private:
    std::shared_ptr<detail::stream_state> m_s;
};

class stream_writer {
public:
    stream_writer() noexcept = default;
    explicit stream_writer(std::shared_ptr<detail::stream_state> s) noexcept : m_s(std::move(s)) {}

    // Queue data; sends what the kernel takes now. Throws std::logic_error
    // after close() or write_eof().
    void write(std::string_view data);
    // Wait until the buffer is at or below the low-water mark if it is above
    // the high-water mark. Throws net_error if the connection failed.
    [[nodiscard]] task<> drain();
    // Half-close after the buffered data is sent (TLS: after the close_notify).
    void write_eof();
    // Close after the buffered data is sent (TLS: and the close_notify, within
    // tls_options::shutdown_timeout, else the connection is closed anyway).
    // Idempotent.
    void close() noexcept;
    // Close now with a reset (RST, SO_LINGER 0): what is buffered is dropped,
    // a read or drain() in progress ends (drain() throws net_error
    // ECONNABORTED; a read sees the end of the stream). asyncio:
    // writer.transport.abort(). Idempotent.
    void abort() noexcept;
    // close() or abort() was called, or a timeout closed the connection.
    [[nodiscard]] bool is_closing() const noexcept;
    // Wait until the connection is closed.
    [[nodiscard]] task<> wait_closed();

    [[nodiscard]] std::size_t write_buffer_size() const noexcept;
    void set_write_buffer_limits(std::size_t high, std::size_t low);
    // Replace this connection's timeouts (all three; zero turns one off),
    // e.g. writer.set_timeouts({.read_timeout = 30s, .idle_timeout = 5min}).
    // A read or flush already waiting is measured from when it started.
    void set_timeouts(stream_timeouts t);
    [[nodiscard]] stream_timeouts timeouts() const noexcept;
    [[nodiscard]] address peer_address() const;
    [[nodiscard]] address local_address() const;

    // asyncio's StreamWriter.start_tls: upgrade this connection to TLS in
    // place (STARTTLS). The context's role decides the side; a client checks
    // opts.server_hostname, or the peer's IP address if that is empty.
    // Suspends until what is buffered has been sent in plaintext, then until
    // the handshake is done (at most opts.handshake_timeout). Data the reader
    // buffered before stays readable as it was. No read may be in progress
    // or start meanwhile (std::logic_error); writes made meanwhile are sent
    // once the handshake is done. Throws tls_error (the connection is then
    // closed), std::logic_error if already TLS, closing or half-closed, or a
    // pipe's stream, and net_error if the connection had failed.
    [[nodiscard]] task<> start_tls(tls_context ctx, tls_options opts);
    [[nodiscard]] task<> start_tls(tls_context ctx); // default tls_options (see tls.hpp)
    // The negotiated TLS parameters and the peer's certificate; nothing for a
    // plain connection or before the handshake is done. Read from the
    // session at each call (the certificate is parsed then): keep the copy.
    [[nodiscard]] std::optional<tls_info> tls() const;

private:
    std::shared_ptr<detail::stream_state> m_s;
};

struct stream_pair {
    stream_reader reader;
    stream_writer writer;
};

// Wrap a connected socket in a reader and a writer. Throws
// std::invalid_argument for low_water above high_water or a negative timeout.
stream_pair make_streams(socket s, stream_options opts = {});

} // namespace coio
