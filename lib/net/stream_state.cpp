// lib/net/stream_state.cpp - the shared connection state of a stream pair:
// buffers, closing, timeouts, and what a server's close_clients /
// abort_clients do to it (stream_state.hpp).
#include "net/stream_state.hpp"
#include "net/sigpipe.hpp"

#include "sys/fd.hpp"

#include <coio/net/error.hpp>

#include <algorithm>
#include <stdexcept>
#include <string>

namespace coio {
namespace detail {

namespace {

using timing_clock = stream_timing::clock;

bool is_timeout(stream_end e) noexcept {
    return e == stream_end::read_timeout || e == stream_end::write_timeout ||
           e == stream_end::idle_timeout;
}

void check_timeout(std::chrono::milliseconds d, const char* name) {
    if (d.count() < 0) {
        throw std::invalid_argument(std::string("coio: negative ") + name);
    }
}

bool any_timeout(const stream_options& o) noexcept {
    return o.read_timeout.count() > 0 || o.write_timeout.count() > 0 || o.idle_timeout.count() > 0;
}

} // namespace

stream_timing::stream_timing(void* state)
    : dog([](void* s) noexcept { static_cast<stream_state*>(s)->on_deadline(); }, state) {
    read_since = write_since = active_since = coio::now();
}

stream_state::stream_state(socket s, const stream_options& o, int pipe, const address* known_peer)
    : sock(std::move(s)), pipe_fd(pipe), opts(o) {
    if (known_peer != nullptr && !known_peer->empty()) {
        peer = *known_peer;
    } else if (!is_pipe()) {
        try {
            peer = sock.peer_address();
        } catch (const net_error&) {
            // Not connected (any more): messages say "(no address)".
        }
    }
    if (any_timeout(opts)) {
        set_timeouts({opts.read_timeout, opts.write_timeout, opts.idle_timeout});
    }
}

stream_state::~stream_state() {
    if (node != nullptr) {
        node->m_stream = nullptr;
    }
    if (sigpipe_held) {
        sock.close(); // no write of ours can raise SIGPIPE after this
        release_sigpipe();
    }
}

std::string stream_state::where() const {
    return is_pipe() ? "pipe (fd " + std::to_string(pipe_fd) + ")" : peer.to_string();
}

void stream_state::consume(std::size_t n) noexcept {
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

void stream_state::clear() noexcept {
    rbuf.clear();
    rbuf.release_if_empty(0);
    lease.reset();
}

void stream_state::spill() {
    if (!lease.empty()) {
        rbuf.append(lease.view());
    }
    lease.reset();
}

void stream_state::check_readable() const {
    if (is_timeout(ended)) {
        throw net_error(std::make_error_code(std::errc::timed_out), describe("read from"));
    }
}

void stream_state::before_read_wait() {
    check_readable();
    read_waiting = true;
    if (timing && opts.read_timeout.count() > 0) {
        timing->read_since = coio::now();
        timing->dog.arm_by(timing->read_since + opts.read_timeout);
    }
}

// Reads are not cut to `limit`: like asyncio, a small limit still takes what
// has arrived in one go, so over-long lines are classified the same way. The
// buffer stays below limit + separator + one chunk (at most 64 KiB).
void stream_state::on_chunk(chunk_result& r) {
    read_waiting = false;
    if (r.ok()) {
        if (timing) {
            timing->active_since = coio::now();
        }
        if (transport) { // decrypted into rbuf; r.data goes back to the pool
            eof = transport->on_data(r.data.view(), rbuf, wbuf);
            return;
        }
        if (buffered() == 0) {
            rbuf.release_if_empty(0);
            lease = std::move(r.data); // zero copy: consumed in place
            return;
        }
        spill();
        rbuf.append(r.data.view()); // r.data goes back to the pool
        return;
    }
    check_readable(); // a timeout ended the read: SHUT_RD's EOF, or the close
    if (r.status == io_status::eof && write_error == std::errc::connection_reset) {
        // The peer reset the connection and a send saw it first: that took
        // the socket's error, and the recv found nothing left to say but 0
        // (io_uring completes the send first). Not an orderly close.
        throw net_error(write_error, "read from " + where());
    }
    if (r.status == io_status::eof || r.status == io_status::cancelled) {
        if (transport && r.status == io_status::eof) {
            transport->on_eof(); // without a close_notify: truncated
        }
        eof = true; // cancelled: the connection was closed locally
        return;
    }
    throw net_error(r.error, "read from " + where());
}

void stream_state::on_write_progress() noexcept {
    if (timing) {
        timing->active_since = coio::now();
    }
}

void stream_state::before_write_wait() {
    if (timing && opts.write_timeout.count() > 0) {
        timing->write_since = coio::now();
        timing->dog.arm_by(timing->write_since + opts.write_timeout);
    }
}

void stream_state::mark_closed() noexcept {
    closed = true;
    eof = true; // nothing more can arrive on a socket closed here
    if (timing) {
        timing->dog.disarm();
    }
    drain_q.notify_all();
    closed_q.notify_all();
}

void stream_state::finish_writes() noexcept {
    if (eof_requested && !eof_sent && !closed) {
        eof_sent = true;
        if (is_pipe()) {
            closing = true; // a pipe's only way to send EOF: close it
        } else {
            (void)sock.shutdown(shutdown_how::write);
        }
    }
    if (closing && !closed) {
        sock.close();
        mark_closed();
    }
}

void stream_state::queue_close_notify() noexcept {
    transport->write_eof(wbuf);
    if (!flushing && unsent() > 0 && !closed) {
        std::string_view v = wbuf.view();
        long n = sys::try_send(sock.native_handle(), v.data(), v.size());
        wbuf.consume(n > 0 ? static_cast<std::size_t>(n) : 0);
    }
}

void stream_state::end_now(stream_end how, bool reset, std::error_code why) noexcept {
    if (closed) {
        return;
    }
    ended = how;
    if (!write_error) {
        write_error = why;
    }
    wbuf.clear();
    sending.clear();
    if (reset) {
        sock.abort(); // pending operations complete as cancelled
    } else {
        sock.close();
    }
    mark_closed();
}

std::string stream_state::describe(std::string_view op) const {
    std::string out(op);
    out += ' ';
    out += where();
    if (timing && is_timeout(ended)) {
        const std::string ms = std::to_string(timing->fired.count()) + " ms";
        out += ended == stream_end::read_timeout ? ": no data for " + ms + " (read_timeout)"
               : ended == stream_end::write_timeout
                   ? ": no write progress for " + ms + " (write_timeout)"
                   : ": idle for " + ms + " (idle_timeout)";
    }
    return out;
}

stream_timing& stream_state::timing_for_use() {
    if (!timing) {
        timing = std::make_unique<stream_timing>(this);
    }
    return *timing;
}

void stream_state::set_timeouts(const stream_timeouts& t) {
    check_timeout(t.read_timeout, "read_timeout");
    check_timeout(t.write_timeout, "write_timeout");
    check_timeout(t.idle_timeout, "idle_timeout");
    opts.read_timeout = t.read_timeout;
    opts.write_timeout = t.write_timeout;
    opts.idle_timeout = t.idle_timeout;
    if (!any_timeout(opts)) {
        if (timing) {
            timing->dog.disarm();
        }
        return;
    }
    stream_timing& tm = timing_for_use();
    if (closed) {
        return;
    }
    // The earliest deadline that applies now; on_deadline works out the rest.
    auto next = due_after(tm.active_since, opts.idle_timeout);
    if (read_waiting) {
        next = std::min(next, due_after(tm.read_since, opts.read_timeout));
    }
    if (flushing) {
        next = std::min(next, due_after(tm.write_since, opts.write_timeout));
    }
    if (next != timing_clock::time_point::max()) {
        tm.dog.arm_by(next);
    }
}

// The watchdog fired: act on what is due, re-arm for what is not. The write
// timeout first: it resets the connection, which also ends any read.
void stream_state::on_deadline() noexcept {
    if (closed || !timing) {
        return;
    }
    stream_timing& tm = *timing;
    const auto now = coio::now();
    auto next = timing_clock::time_point::max();
    if (flushing && unsent() > 0) {
        const auto due = due_after(tm.write_since, opts.write_timeout);
        if (now >= due) {
            tm.fired = opts.write_timeout;
            end_now(stream_end::write_timeout, true, std::make_error_code(std::errc::timed_out));
            return;
        }
        next = std::min(next, due);
    }
    const auto idle_due = due_after(tm.active_since, opts.idle_timeout);
    if (now >= idle_due) {
        tm.fired = opts.idle_timeout;
        end_now(stream_end::idle_timeout, unsent() > 0, std::make_error_code(std::errc::timed_out));
        return;
    }
    next = std::min(next, idle_due);
    if (read_waiting && ended == stream_end::none) {
        const auto due = due_after(tm.read_since, opts.read_timeout);
        if (now >= due) {
            // Shutting the read side ends the waiting read with EOF on every
            // backend; on_chunk turns it into the timeout error.
            tm.fired = opts.read_timeout;
            ended = stream_end::read_timeout;
            if (is_pipe()) {
                sock.close(); // no SHUT_RD for a pipe: the read ends cancelled
            } else {
                (void)sock.shutdown(shutdown_how::read);
            }
        } else {
            next = std::min(next, due);
        }
    }
    if (next != timing_clock::time_point::max()) {
        try {
            tm.dog.arm_by(next);
        } catch (...) {
            // The heap could not grow (it just gave this node's slot back, so
            // it cannot happen); the connection then keeps no timeout.
        }
    }
}

stream_state& checked(const std::shared_ptr<stream_state>& s) {
    if (!s) {
        throw std::logic_error("coio: use of an empty stream_reader/stream_writer");
    }
    return *s;
}

void close_stream(stream_state& s) noexcept {
    if (s.closing) {
        return;
    }
    s.closing = true;
    if (s.transport) { // close_clients(): sent if the socket takes it now
        s.queue_close_notify();
    }
    if (!s.flushing) {
        s.finish_writes();
    }
}

void abort_stream(stream_state& s) noexcept {
    s.closing = true;
    s.end_now(stream_end::aborted, true, std::make_error_code(std::errc::connection_aborted));
}

void unlink_stream(stream_state& s) noexcept {
    s.node = nullptr;
}

} // namespace detail

stream_pair make_streams(socket s, stream_options opts) {
    detail::check_stream_options(opts);
    auto st = std::make_shared<detail::stream_state>(std::move(s), opts);
    return {stream_reader(st), stream_writer(st)};
}

namespace detail {

void check_stream_options(const stream_options& o) {
    if (o.low_water > o.high_water) {
        throw std::invalid_argument("coio::stream_options: low_water above high_water");
    }
    check_timeout(o.read_timeout, "read_timeout");
    check_timeout(o.write_timeout, "write_timeout");
    check_timeout(o.idle_timeout, "idle_timeout");
}

stream_pair make_server_streams(socket s, const stream_options& opts, connection_node& node) {
    auto st = std::make_shared<stream_state>(std::move(s), opts, -1, &node.m_peer);
    st->node = &node;
    node.m_stream = st.get();
    return {stream_reader(st), stream_writer(st)};
}

} // namespace detail

} // namespace coio
