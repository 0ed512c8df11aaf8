// lib/net/stream_state.hpp - the connection a stream_reader and a
// stream_writer share: the socket, the read and write buffers, the closing
// state machine and the optional timeouts (stream.hpp states the rules).
// stream_state.cpp has the state's methods, stream.cpp the operations.
#pragma once

#include "net/byte_buffer.hpp"
#include "net/connection_node.hpp"
#include "net/stream_transport.hpp"
#include "net/watchdog.hpp"

#include <coio/detail/wait_queue.hpp>
#include <coio/net/buffer_lease.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <system_error>

namespace coio::detail {

// What ended the connection, or its read side, before the peer did.
enum class stream_end : std::uint8_t {
    none,
    read_timeout,  // the read side only: reads throw, writes go on
    write_timeout, // the connection was reset
    idle_timeout,  // the connection was closed (reset if data was unsent)
    aborted,       // abort() / abort_clients(): reset, reads see EOF
};

// Only for connections with a timeout: allocated once, when one is set.
struct stream_timing {
    using clock = watchdog::clock;
    explicit stream_timing(void* state);

    watchdog dog;
    clock::time_point read_since;       // a waiting read started (or last got data)
    clock::time_point write_since;      // the flush last made progress (or started waiting)
    clock::time_point active_since;     // the last byte moved either way
    std::chrono::milliseconds fired{0}; // the timeout that ended the connection
};

struct stream_state {
    // `pipe_fd` >= 0: s is a pipe, FIFO or tty, not a socket (lib/net/pipe.cpp).
    // known_peer: the address accept() reported (a server's connection), kept
    // instead of asking the kernel, which no longer knows it after a reset.
    stream_state(socket s, const stream_options& o, int pipe_fd = -1,
                 const address* known_peer = nullptr);
    stream_state(const stream_state&) = delete;
    stream_state& operator=(const stream_state&) = delete;
    ~stream_state();

    socket sock; // owns the fd, whatever it is: only its close/abort/shutdown are used for pipes
    // A pipe (connect_read_pipe / connect_write_pipe): its fd number, kept for
    // messages ("pipe (fd 7)") after the fd is closed; -1 for a socket. A pipe
    // reads with read(2) (read_pooled) and writes with write(2), and is
    // half-closed by closing it.
    int pipe_fd = -1;
    stream_options opts;
    address peer;

    // Read data not yet consumed is in one of two places, never both: the
    // last chunk's lease, consumed in place while a read operation runs, or
    // rbuf, which holds only what did not fit in one chunk (a partial line)
    // and what a read operation left over. The lease is held only between two
    // waits: it is spilled into rbuf before the reader waits for more data
    // (COIO_FILL in stream.cpp) and when an operation ends (a lease must not
    // outlive its loop, a stream_reader may). An idle or waiting reader holds
    // no lent buffer, and rbuf is freed when empty.
    buffer_lease lease;
    byte_buffer rbuf;
    bool eof = false;
    bool reading = false;
    bool read_waiting = false; // a read operation waits for data (read_timeout runs)
    stream_end ended = stream_end::none;

    // Data to send is in two blocks: `wbuf`, where write() appends, and
    // `sending`, which the background flush sends from. The flush takes wbuf
    // over (a swap) only when `sending` is empty, so the bytes a pending send
    // points to are never moved or freed by a write() meanwhile.
    byte_buffer wbuf;
    byte_buffer sending;
    std::error_code write_error;
    bool flushing = false;
    bool eof_requested = false;
    bool eof_sent = false;
    bool closing = false;
    bool closed = false;
    bool sigpipe_held = false; // a pipe writer: hold_sigpipe() until destroyed (sigpipe.hpp)
    wait_queue drain_q;
    wait_queue closed_q;

    connection_node* node = nullptr; // the server's entry for this connection, if any
    std::unique_ptr<stream_timing> timing;

    // TLS, or null for plain bytes (net/stream_transport.hpp). Set by
    // start_tls; then rbuf holds plaintext (the lease is never used) and
    // write() encrypts into wbuf.
    std::unique_ptr<stream_transport> transport;

    [[nodiscard]] bool is_pipe() const noexcept { return pipe_fd >= 0; }
    // The ops that move data on this connection's fd.
    [[nodiscard]] op_code read_op() const noexcept {
        return is_pipe() ? op_code::read_pooled : op_code::recv_pooled;
    }
    [[nodiscard]] std::uint8_t read_flags() const noexcept {
        return opts.small_reads ? op_small : std::uint8_t{0};
    }
    [[nodiscard]] op_code write_op() const noexcept {
        return is_pipe() ? op_code::write : op_code::send;
    }
    // For messages: the peer's address, or "pipe (fd N)".
    [[nodiscard]] std::string where() const;

    [[nodiscard]] std::string_view view() const noexcept {
        return rbuf.empty() ? lease.view() : rbuf.view();
    }
    [[nodiscard]] std::size_t buffered() const noexcept { return rbuf.size() + lease.size(); }
    // Bytes written and not sent yet.
    [[nodiscard]] std::size_t unsent() const noexcept { return wbuf.size() + sending.size(); }
    void consume(std::size_t n) noexcept;
    void clear() noexcept;
    // Moves what is left of the lease into rbuf and gives the buffer back.
    void spill();

    // Reads: a read operation may start (throws if a timeout ended the read
    // side); it is about to wait for data (starts read_timeout); one
    // read_chunk came back (throws net_error for a read error or a timeout).
    void check_readable() const;
    void before_read_wait();
    void on_chunk(chunk_result& r);

    // Writes: progress was made (idle_timeout); the flush is about to wait
    // (starts write_timeout).
    void on_write_progress() noexcept;
    void before_write_wait();
    // Carries out a pending write_eof / close once the buffer is empty.
    void finish_writes() noexcept;
    // TLS: appends the close_notify and, if no flush runs, sends what it can
    // at once (a close must not wait).
    void queue_close_notify() noexcept;
    // Ends the connection now: `reset` sends an RST and drops what is
    // buffered; pending reads and drains end; write_error becomes `why`.
    void end_now(stream_end how, bool reset, std::error_code why) noexcept;
    // "write to <peer>" or "read from <peer>" plus what ended the connection.
    [[nodiscard]] std::string describe(std::string_view op) const;

    void set_timeouts(const stream_timeouts& t);
    void on_deadline() noexcept;

private:
    void mark_closed() noexcept;
    stream_timing& timing_for_use();
};

// Marks the stream as read by one operation (std::logic_error if another one
// runs; net_error if a timeout ended the read side); at its end, gives the
// lease back and frees an empty buffer (stream.cpp).
class read_guard {
public:
    explicit read_guard(stream_state& s);
    read_guard(const read_guard&) = delete;
    read_guard& operator=(const read_guard&) = delete;
    ~read_guard();

private:
    stream_state& m_s;
};

// stream.cpp: starts the background flush of what is buffered (flushing must
// be false); waits until the connection is closed.
void start_flush(const std::shared_ptr<stream_state>& st);
task<> wait_closed_impl(std::shared_ptr<stream_state> st);

// stream_tls.cpp: stream_writer::close() of a TLS stream - the close_notify
// after the buffered data, then the close, within the shutdown timeout.
void close_tls(const std::shared_ptr<stream_state>& st) noexcept;

// Throws std::invalid_argument for low_water above high_water or a negative
// timeout (make_streams, and the servers when they start).
void check_stream_options(const stream_options& o);

// Checked access for the public methods: throws std::logic_error for a
// default-constructed reader or writer.
stream_state& checked(const std::shared_ptr<stream_state>& s);

} // namespace coio::detail
