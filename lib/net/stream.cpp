// lib/net/stream.cpp - stream_reader / stream_writer over one connection.
//
// Every public method that suspends forwards to a free coroutine that takes the
// shared state by value, so the connection outlives the operation whatever
// happens to the reader or writer object (STYLE §3: parameters by value).
#include "net/byte_buffer.hpp"
#include "sys/fd.hpp"

#include <coio/detail/wait_queue.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/stream.hpp>

#include <cerrno>
#include <stdexcept>

namespace coio {

incomplete_read_error::incomplete_read_error(std::string partial, std::size_t expected)
    : std::runtime_error(std::to_string(partial.size()) + " bytes read on a total of " +
                         (expected > 0 ? std::to_string(expected) : std::string("undefined")) +
                         " expected bytes"),
      m_partial(std::move(partial)), m_expected(expected) {}

namespace detail {

// The write buffer keeps its block between writes up to this size.
constexpr std::size_t write_keep = 64 * 1024;

struct stream_state {
    stream_state(socket s, stream_options o) : sock(std::move(s)), opts(o) {
        try {
            peer = sock.peer_address();
        } catch (const net_error&) {
            // Not connected (any more): messages say "(no address)".
        }
    }

    socket sock;
    stream_options opts;
    address peer;

    // Read data not yet consumed is in one of two places, never both: the
    // last chunk's lease, consumed in place while a read operation runs, or
    // rbuf, which holds only what did not fit in one chunk (a partial line)
    // and what a read operation left over. The lease is held only between two
    // waits: it is spilled into rbuf before the reader waits for more data
    // (COIO_FILL) and when an operation ends (a lease must not outlive its
    // loop, a stream_reader may). An idle or waiting reader holds no lent
    // buffer, and rbuf is freed when empty.
    buffer_lease lease;
    byte_buffer rbuf;
    bool eof = false;
    bool reading = false;

    // Written data not sent yet: `wsend` is what the flush is sending from -
    // a send in flight points into it, so nothing appends to it (an append
    // may move the bytes or the block) - and `wbuf` takes what write()
    // queues meanwhile. The flush swaps them when wsend is empty.
    byte_buffer wsend;
    byte_buffer wbuf;
    std::error_code write_error;
    bool flushing = false;
    bool eof_requested = false;
    bool eof_sent = false;
    bool closing = false;
    bool closed = false;
    wait_queue drain_q;
    wait_queue closed_q;

    [[nodiscard]] std::string_view view() const noexcept {
        return rbuf.empty() ? lease.view() : rbuf.view();
    }
    [[nodiscard]] std::size_t buffered() const noexcept { return rbuf.size() + lease.size(); }
    [[nodiscard]] std::size_t write_buffered() const noexcept { return wsend.size() + wbuf.size(); }

    void consume(std::size_t n) noexcept {
        if (!rbuf.empty()) {
            rbuf.consume(n);
            rbuf.release_if_empty(0);
            return;
        }
        lease.remove_prefix(n);
        if (lease.empty()) {
            lease.reset();
        }
    }
    void clear() noexcept {
        rbuf.clear();
        rbuf.release_if_empty(0);
        lease.reset();
    }
    // Moves what is left of the lease into rbuf and gives the buffer back.
    void spill() {
        if (!lease.empty()) {
            rbuf.append(lease.view());
        }
        lease.reset();
    }

    // Account for one read_chunk. Reads are not cut to `limit`: like asyncio,
    // a small limit still takes what has arrived in one go, so over-long lines
    // are classified the same way. The buffer stays below limit + separator +
    // one chunk (4 KiB).
    void on_chunk(chunk_result& r) {
        if (r.ok()) {
            if (buffered() == 0) {
                rbuf.release_if_empty(0);
                lease = std::move(r.data); // zero copy: consumed in place
                return;
            }
            spill();
            rbuf.append(r.data.view()); // r.data goes back to the pool
            return;
        }
        if (r.status == io_status::eof || r.status == io_status::cancelled) {
            eof = true; // cancelled: the connection was closed locally
            return;
        }
        throw net_error(r.error, "read from " + peer.to_string());
    }

    void finish_writes() noexcept {
        if (eof_requested && !eof_sent && !closed) {
            eof_sent = true;
            (void)sock.shutdown(shutdown_how::write);
        }
        if (closing && !closed) {
            sock.close();
            closed = true;
            closed_q.notify_all();
        }
    }
};

namespace {

class read_guard {
public:
    explicit read_guard(stream_state& s) : m_s(s) {
        if (s.reading) {
            throw std::logic_error("coio::stream_reader: another task is already reading from " +
                                   s.peer.to_string());
        }
        s.reading = true;
    }
    read_guard(const read_guard&) = delete;
    read_guard& operator=(const read_guard&) = delete;
    ~read_guard() {
        m_s.reading = false;
        try {
            m_s.spill();
        } catch (...) { // out of memory: drop the rest rather than hold the buffer
            m_s.lease.reset();
        }
        m_s.rbuf.release_if_empty(0);
    }

private:
    stream_state& m_s;
};

// One chunk into the buffer: expands to the socket's own awaiter, so filling
// allocates no frame. What is left of the current lease is copied into rbuf
// and the lease given back *before* the wait: a reader never holds a lent
// buffer while it waits for more data, so peers that send a partial line and
// stop cannot drain the loop's pool (64 such clients froze every connection
// of a default io_uring server, 4,096 on epoll).
#define COIO_FILL(st)                                                                              \
    do {                                                                                           \
        (st)->spill();                                                                             \
        chunk_result r_ = co_await (st)->sock.read_chunk();                                        \
        (st)->on_chunk(r_);                                                                        \
    } while (false)

task<std::string> read_impl(std::shared_ptr<stream_state> st, std::ptrdiff_t n) {
    read_guard g(*st);
    if (n == 0) {
        co_return std::string();
    }
    if (n < 0) {
        while (!st->eof) {
            COIO_FILL(st);
        }
        std::string all(st->view());
        st->clear();
        co_return all;
    }
    if (st->buffered() == 0 && !st->eof) {
        COIO_FILL(st);
    }
    std::string_view v = st->view().substr(0, static_cast<std::size_t>(n));
    std::string out(v);
    st->consume(v.size());
    co_return out;
}

// asyncio's StreamReader.readuntil, step for step.
task<std::string> readuntil_impl(std::shared_ptr<stream_state> st, std::string sep) {
    if (sep.empty()) {
        throw std::invalid_argument("coio::stream_reader::readuntil: empty separator");
    }
    const std::size_t limit = st->opts.limit;
    std::size_t offset = 0;
    for (;;) {
        std::string_view v = st->view();
        if (v.size() - offset >= sep.size()) {
            std::size_t isep = v.find(sep, offset);
            if (isep != std::string_view::npos) {
                if (isep > limit) {
                    throw limit_overrun_error("Separator is found, but chunk is longer than limit",
                                              isep);
                }
                std::string out(v.substr(0, isep + sep.size()));
                st->consume(out.size());
                co_return out;
            }
            offset = v.size() + 1 - sep.size();
            if (offset > limit) {
                throw limit_overrun_error("Separator is not found, and chunk exceed the limit",
                                          offset);
            }
        }
        if (st->eof) {
            std::string partial(v);
            st->clear();
            throw incomplete_read_error(std::move(partial), 0);
        }
        COIO_FILL(st);
    }
}

task<std::string> readuntil_guarded(std::shared_ptr<stream_state> st, std::string sep) {
    read_guard g(*st);
    co_return co_await readuntil_impl(st, std::move(sep));
}

// asyncio's readline: the partial line at EOF; on overrun, drop the long line
// (through its '\n' if that has arrived, else everything buffered) and raise.
task<std::string> readline_impl(std::shared_ptr<stream_state> st) {
    read_guard g(*st);
    std::size_t consumed = 0;
    std::string message;
    try {
        co_return co_await readuntil_impl(st, "\n");
    } catch (incomplete_read_error& e) {
        co_return e.partial();
    } catch (limit_overrun_error& e) {
        consumed = e.consumed();
        message = e.what();
    }
    std::string_view v = st->view();
    if (consumed < v.size() && v[consumed] == '\n') {
        st->consume(consumed + 1);
    } else {
        st->clear();
    }
    throw limit_overrun_error(message, consumed);
}

task<std::string> readexactly_impl(std::shared_ptr<stream_state> st, std::size_t n) {
    read_guard g(*st);
    while (st->buffered() < n) {
        if (st->eof) {
            std::string partial(st->view());
            st->clear();
            throw incomplete_read_error(std::move(partial), n);
        }
        COIO_FILL(st);
    }
    std::string out(st->view().substr(0, n));
    st->consume(n);
    co_return out;
}

#undef COIO_FILL

// Background flush: sends the buffer in order, wakes drain() at the low-water
// mark, then carries out a pending write_eof / close.
task<> flush(std::shared_ptr<stream_state> st) {
    struct done {
        stream_state& s;
        ~done() {
            s.flushing = false;
            s.drain_q.notify_all();
            s.finish_writes();
        }
    } guard{*st};
    while (!st->closed) {
        if (st->wsend.empty()) {
            if (st->wbuf.empty()) {
                break;
            }
            std::swap(st->wsend, st->wbuf); // write() appends to the other block now
        }
        std::string_view v = st->wsend.view();
        io_result r = co_await st->sock.write_some(v);
        if (!r) {
            st->write_error = r.error ? r.error : std::make_error_code(std::errc::broken_pipe);
            st->wsend.clear();
            st->wbuf.clear();
            break;
        }
        st->wsend.consume(r.bytes);
        if (st->write_buffered() <= st->opts.low_water) {
            st->drain_q.notify_all();
        }
    }
    // Keep at most one block (the larger, if small enough) for the next writes.
    if (st->wsend.empty() && st->wbuf.empty() && st->wsend.capacity() > st->wbuf.capacity()) {
        std::swap(st->wsend, st->wbuf);
    }
    st->wsend.release_if_empty(0);
    st->wbuf.release_if_empty(write_keep);
}

task<> drain_impl(std::shared_ptr<stream_state> st) {
    if (st->write_buffered() > st->opts.high_water) {
        while (st->write_buffered() > st->opts.low_water && !st->write_error && !st->closed) {
            co_await st->drain_q.wait();
        }
    }
    if (st->write_error) {
        throw net_error(st->write_error, "write to " + st->peer.to_string());
    }
}

task<> wait_closed_impl(std::shared_ptr<stream_state> st) {
    while (!st->closed) {
        co_await st->closed_q.wait();
    }
}

stream_state& checked(const std::shared_ptr<stream_state>& s) {
    if (!s) {
        throw std::logic_error("coio: use of an empty stream_reader/stream_writer");
    }
    return *s;
}

} // namespace
} // namespace detail

stream_pair make_streams(socket s, stream_options opts) {
    if (opts.low_water > opts.high_water) {
        throw std::invalid_argument("coio::make_streams: low_water above high_water");
    }
    auto st = std::make_shared<detail::stream_state>(std::move(s), opts);
    return {stream_reader(st), stream_writer(st)};
}

task<std::string> stream_reader::read(std::ptrdiff_t n) {
    detail::checked(m_s);
    return detail::read_impl(m_s, n);
}
task<std::string> stream_reader::readline() {
    detail::checked(m_s);
    return detail::readline_impl(m_s);
}
task<std::string> stream_reader::readuntil(std::string separator) {
    detail::checked(m_s);
    return detail::readuntil_guarded(m_s, std::move(separator));
}
task<std::string> stream_reader::readexactly(std::size_t n) {
    detail::checked(m_s);
    return detail::readexactly_impl(m_s, n);
}
bool stream_reader::at_eof() const noexcept {
    return m_s && m_s->eof && m_s->buffered() == 0;
}
std::size_t stream_reader::buffered() const noexcept {
    return m_s ? m_s->buffered() : 0;
}
std::size_t stream_reader::limit() const noexcept {
    return m_s ? m_s->opts.limit : 0;
}

void stream_writer::write(std::string_view data) {
    detail::stream_state& st = detail::checked(m_s);
    if (st.closing || st.eof_requested) {
        throw std::logic_error("coio::stream_writer: write after " +
                               std::string(st.closing ? "close()" : "write_eof()") + " to " +
                               st.peer.to_string());
    }
    if (st.write_error || data.empty()) {
        return; // the failure is reported by drain()
    }
    if (st.wbuf.empty() && !st.flushing) {
        long n = sys::try_send(st.sock.native_handle(), data.data(), data.size());
        if (n >= 0) {
            data.remove_prefix(static_cast<std::size_t>(n));
        } else if (n != -EAGAIN) {
            st.write_error = sys::errno_code(static_cast<int>(-n));
            return;
        }
        if (data.empty()) {
            return;
        }
    }
    st.wbuf.append(data);
    if (!st.flushing) {
        st.flushing = true;
        event_loop::running().create_task(detail::flush(m_s), "stream flush");
    }
}

task<> stream_writer::drain() {
    detail::checked(m_s);
    return detail::drain_impl(m_s);
}

void stream_writer::write_eof() {
    detail::stream_state& st = detail::checked(m_s);
    st.eof_requested = true;
    if (!st.flushing) {
        st.finish_writes();
    }
}

void stream_writer::close() noexcept {
    if (!m_s || m_s->closing) {
        return;
    }
    m_s->closing = true;
    if (!m_s->flushing) {
        m_s->finish_writes();
    }
}

bool stream_writer::is_closing() const noexcept {
    return m_s && m_s->closing;
}

task<> stream_writer::wait_closed() {
    detail::checked(m_s);
    return detail::wait_closed_impl(m_s);
}

std::size_t stream_writer::write_buffer_size() const noexcept {
    return m_s ? m_s->write_buffered() : 0;
}

void stream_writer::set_write_buffer_limits(std::size_t high, std::size_t low) {
    if (low > high) {
        throw std::invalid_argument("coio::stream_writer: low-water mark above high-water mark");
    }
    detail::stream_state& st = detail::checked(m_s);
    st.opts.high_water = high;
    st.opts.low_water = low;
}

address stream_writer::peer_address() const {
    return detail::checked(m_s).peer;
}
address stream_writer::local_address() const {
    return detail::checked(m_s).sock.local_address();
}

} // namespace coio
