// lib/net/stream_tls.cpp - the stream side of TLS: start_tls installs a
// transport (net/stream_transport.hpp; the session itself is in lib/tls/) in
// the stream's state, and close() of a TLS stream sends the close_notify
// within the shutdown timeout. The per-read and per-write hook points are in
// stream.cpp and stream_state.cpp.
#include "net/stream_state.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/stream.hpp>
#include <coio/timeout.hpp>

#include <stdexcept>
#include <string>

namespace coio {
namespace detail {

namespace {

task<> start_tls_impl(std::shared_ptr<stream_state> st, tls_context ctx, tls_options opts) {
    read_guard g(*st); // the handshake reads the socket: no read may run meanwhile
    auto refuse = [&st](const char* why) {
        throw std::logic_error(std::string("coio::stream_writer::start_tls: the connection to ") +
                               st->where() + why);
    };
    if (st->is_pipe()) {
        refuse(" is a pipe (TLS runs over sockets)");
    }
    if (st->transport) {
        refuse(" is already TLS");
    }
    while (st->flushing) { // what was written before goes out in plaintext
        co_await st->drain_q.wait();
    }
    if (st->closing || st->closed || st->eof_requested) {
        refuse(" is closing or half-closed");
    }
    if (st->write_error) {
        throw net_error(st->write_error, st->describe("write to"));
    }
    st->transport = make_tls_transport(ctx, opts, st->peer);
    try {
        co_await st->transport->handshake(&st->sock, &st->rbuf, &st->wbuf);
    } catch (...) { // asyncio closes the transport too
        if (!st->write_error) {
            st->write_error = make_error_code(tls_errc::handshake);
        }
        st->wbuf.clear();
        st->sending.clear();
        st->closing = true;
        st->finish_writes();
        throw;
    }
    if (st->unsent() > 0 && !st->flushing) { // written during the handshake
        start_flush(st);
    }
}

// Closes the socket if sending the buffered records and the close_notify
// takes longer than the shutdown timeout (a peer that does not read).
task<> linger(std::shared_ptr<stream_state> st, std::chrono::milliseconds d) {
    try {
        co_await wait_for(wait_closed_impl(st), d);
    } catch (const timeout_error&) {
        st->sock.close(); // the flush's send completes as cancelled; the flush ends
    }
}

} // namespace

void close_tls(const std::shared_ptr<stream_state>& st) noexcept {
    if (st->closing) {
        return;
    }
    st->closing = true;
    st->queue_close_notify(); // after the buffered data
    if (!st->flushing && st->unsent() == 0) {
        st->finish_writes();
        return;
    }
    try {
        if (!st->flushing) {
            start_flush(st);
        }
        event_loop::running().create_task(linger(st, st->transport->shutdown_timeout()),
                                          "TLS shutdown");
    } catch (...) { // out of memory: close now
        st->sock.close();
        if (!st->flushing) {
            st->finish_writes();
        }
    }
}

} // namespace detail

task<> stream_writer::start_tls(tls_context ctx, tls_options opts) {
    detail::checked(m_s);
    return detail::start_tls_impl(m_s, std::move(ctx), std::move(opts));
}
task<> stream_writer::start_tls(tls_context ctx) {
    return start_tls(std::move(ctx), tls_options{});
}

std::optional<tls_info> stream_writer::tls() const {
    const detail::stream_state& st = detail::checked(m_s);
    return st.transport ? st.transport->info() : std::nullopt;
}

} // namespace coio
