// lib/net/stream.cpp - stream_reader / stream_writer over one connection
// (the state they share: stream_state.hpp).
//
// Every public method that suspends forwards to a free coroutine that takes the
// shared state by value, so the connection outlives the operation whatever
// happens to the reader or writer object (STYLE §3: parameters by value).
#include "net/stream_state.hpp"
#include "sys/fd.hpp"

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

// The write buffer keeps its block between writes up to this size (a TLS
// stream keeps none: every write passes through the flush).
constexpr std::size_t write_keep = 64 * 1024;

read_guard::read_guard(stream_state& s) : m_s(s) {
    if (s.reading) {
        throw std::logic_error("coio::stream_reader: another task is already reading from " +
                               s.where());
    }
    s.check_readable();
    s.reading = true;
}

read_guard::~read_guard() {
    m_s.reading = false;
    m_s.read_waiting = false;
    try {
        m_s.spill();
    } catch (...) {
        // Out of memory for the copy: the stream keeps the lent buffer
        // until the next read consumes it (that read's own spill, before it
        // waits, reports the failure) - never drops bytes it was sent.
    }
    m_s.rbuf.release_if_empty(0);
}

namespace {

// One chunk into the buffer: expands to the socket's own awaiter, so filling
// allocates no frame (a pipe's reads the same way with read_pooled). What is left of the current
// lease is copied into rbuf and the lease given back *before* the wait: a reader never holds a lent
// buffer while it waits for more data, so peers that send a partial line and
// stop cannot drain the loop's pool (64 such clients froze every connection
// of a default io_uring server, 4,096 on epoll). A TLS stream may have
// records to send after a read (a key update's reply): the flush sends them.
#define COIO_FILL(st)                                                                              \
    do {                                                                                           \
        (st)->spill();                                                                             \
        (st)->before_read_wait();                                                                  \
        chunk_result r_ = co_await socket::chunk_awaiter((st)->sock.native_handle(),               \
                                                         (st)->read_op(), (st)->read_flags());     \
        (st)->on_chunk(r_);                                                                        \
        if ((st)->transport && (st)->unsent() > 0 && !(st)->flushing) {                            \
            start_flush(st);                                                                       \
        }                                                                                          \
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
    while (st->buffered() == 0 && !st->eof) { // TLS: a chunk may hold no plaintext
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
    while (st->unsent() > 0 && !st->closed) {
        if (st->sending.empty()) {
            std::swap(st->sending, st->wbuf);
        }
        std::string_view v = st->sending.view();
        st->before_write_wait();
        io_result r = co_await socket::send_awaiter(st->sock.native_handle(), v.data(), v.size(), 0,
                                                    st->write_op());
        if (!r) {
            if (!st->write_error) { // a timeout or abort that closed the socket said why
                st->write_error = r.error ? r.error : std::make_error_code(std::errc::broken_pipe);
            }
            st->wbuf.clear();
            st->sending.clear();
            break;
        }
        st->on_write_progress();
        st->sending.consume(r.bytes);
        if (st->unsent() <= st->opts.low_water) {
            st->drain_q.notify_all();
        }
    }
    const std::size_t keep = st->transport ? 0 : write_keep;
    st->wbuf.release_if_empty(keep);
    st->sending.release_if_empty(keep);
}

} // namespace

void start_flush(const std::shared_ptr<stream_state>& st) {
    event_loop::running().create_task(flush(st), "stream flush");
    st->flushing = true;
}

namespace {

task<> drain_impl(std::shared_ptr<stream_state> st) {
    if (st->unsent() > st->opts.high_water) {
        while (st->unsent() > st->opts.low_water && !st->write_error && !st->closed) {
            co_await st->drain_q.wait();
        }
    }
    if (st->write_error) {
        throw net_error(st->write_error, st->describe("write to"));
    }
}

} // namespace

task<> wait_closed_impl(std::shared_ptr<stream_state> st) {
    while (!st->closed) {
        co_await st->closed_q.wait();
    }
}

} // namespace detail

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
        const char* what = st.ended == detail::stream_end::aborted ? "abort()"
                           : st.closing                            ? "close()"
                                                                   : "write_eof()";
        throw std::logic_error("coio::stream_writer: write after " + std::string(what) + " to " +
                               st.where());
    }
    if (st.write_error || st.closed || data.empty()) {
        return; // the failure is reported by drain()
    }
    if (st.transport) { // records into wbuf, sent together by the flush
        st.write_error = st.transport->write(data, st.wbuf);
        if (st.unsent() > 0 && !st.flushing) {
            detail::start_flush(m_s);
        }
        return;
    }
    if (st.unsent() == 0 && !st.flushing) {
        const int fd = st.sock.native_handle();
        long n = st.is_pipe() ? sys::try_write(fd, data.data(), data.size())
                              : sys::try_send(fd, data.data(), data.size());
        if (n > 0) {
            st.on_write_progress();
        }
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
        detail::start_flush(m_s);
    }
}

task<> stream_writer::drain() {
    detail::checked(m_s);
    return detail::drain_impl(m_s);
}

void stream_writer::write_eof() {
    detail::stream_state& st = detail::checked(m_s);
    if (st.transport && !st.eof_requested && !st.closing) {
        st.transport->write_eof(st.wbuf); // the close_notify, then the half-close
        if (st.unsent() > 0 && !st.flushing) {
            st.eof_requested = true;
            detail::start_flush(m_s);
            return;
        }
    }
    st.eof_requested = true;
    if (!st.flushing) {
        st.finish_writes();
    }
}

void stream_writer::close() noexcept {
    if (m_s && m_s->transport) {
        detail::close_tls(m_s); // the close_notify, bounded by the shutdown timeout
    } else if (m_s) {
        detail::close_stream(*m_s);
    }
}

void stream_writer::abort() noexcept {
    if (m_s) {
        detail::abort_stream(*m_s);
    }
}

bool stream_writer::is_closing() const noexcept {
    return m_s && (m_s->closing || m_s->closed);
}

task<> stream_writer::wait_closed() {
    detail::checked(m_s);
    return detail::wait_closed_impl(m_s);
}

std::size_t stream_writer::write_buffer_size() const noexcept {
    return m_s ? m_s->unsent() : 0;
}

void stream_writer::set_write_buffer_limits(std::size_t high, std::size_t low) {
    if (low > high) {
        throw std::invalid_argument("coio::stream_writer: low-water mark above high-water mark");
    }
    detail::stream_state& st = detail::checked(m_s);
    st.opts.high_water = high;
    st.opts.low_water = low;
}

void stream_writer::set_timeouts(stream_timeouts t) {
    detail::checked(m_s).set_timeouts(t);
}

stream_timeouts stream_writer::timeouts() const noexcept {
    if (!m_s) {
        return {};
    }
    return {m_s->opts.read_timeout, m_s->opts.write_timeout, m_s->opts.idle_timeout};
}

address stream_writer::peer_address() const {
    return detail::checked(m_s).peer;
}
address stream_writer::local_address() const {
    return detail::checked(m_s).sock.local_address();
}

} // namespace coio
