// log_collector/source_task.cpp - the pull loop: connect, read, write, ACK,
// reconnect (source_task.hpp).
//
// The seeds' stream_logs, with the delivery guarantee made explicit:
//
//   reader, writer = await asyncio.open_connection(host, port)
//   while chunk := await reader.read(1024):
//       for each complete line: write it out          (the output buffer)
//       flush the output                              (write(2) completed)
//       writer.write(b"ACK\n" * lines); await writer.drain()
//
// A line is acknowledged only after its bytes were handed to write(2), so the
// source may forget it: at-least-once. What is read but not yet a complete
// line is never acknowledged; when the connection goes away it is dropped and
// the source sends it again on the next connection.
#include "source_task.hpp"

#include "backoff.hpp"
#include "line_assembler.hpp"

#include <coio/cancel.hpp>
#include <coio/net/connection.hpp>
#include <coio/net/error.hpp>
#include <coio/sleep.hpp>
#include <coio/timeout.hpp>

#include <netinet/in.h>
#include <netinet/tcp.h> // TCP_USER_TIMEOUT, for socket::set_option

#include <algorithm>
#include <functional>
#include <string>
#include <utility>

namespace logcollect {

namespace {

constexpr auto close_timeout = std::chrono::seconds(2);
constexpr int ack_send_buffer = 32 * 1024; // the kernel doubles it

// One per thread: every loop of --loops N answers its own sources.
const std::string& ack_text(std::uint64_t n) {
    thread_local std::string acks;
    acks.clear();
    for (std::uint64_t i = 0; i < n; ++i) {
        acks += "ACK\n";
    }
    return acks;
}

bool is_self_connection(const coio::stream_writer& w) {
    try {
        return w.local_address() == w.peer_address();
    } catch (const coio::net_error&) {
        return false; // already gone: the first read says so
    }
}

// How one connection ended.
struct session_end {
    bool stopped = false;  // cancelled: the collector is shutting down
    bool got_data = false; // at least one byte arrived
    std::string why;       // EOF / error text, for the message
    std::string cut;       // what happened to an unfinished line, if any
};

// Read and discard until the source closes its side (it saw our FIN).
coio::task<> discard_until_eof(coio::stream_reader r) {
    for (;;) {
        std::string ignored = co_await r.read(64 * 1024);
        if (ignored.empty()) {
            co_return;
        }
    }
}

// Close the connection. After a stop, do it gracefully: send FIN after the
// last ACKs and wait (bounded) for the source to close too, discarding what
// it still sends (unacknowledged, so it sends it again later). Closing with
// unread data would make the kernel answer with RST, and a source that gets
// RST may lose the last ACKs we sent before reading them.
coio::task<> close_streams(coio::stream_pair conn, bool graceful) {
    try {
        if (graceful) {
            conn.writer.write_eof();
            co_await coio::wait_for(discard_until_eof(std::move(conn.reader)), close_timeout);
        }
        conn.writer.close();
        co_await coio::wait_for(conn.writer.wait_closed(), close_timeout);
    } catch (const coio::timeout_error&) {
        // The source does not close or read its ACKs; it will resend those lines.
    } catch (const coio::cancelled_error&) {
        // A second stop request: do not wait.
    } catch (const coio::net_error&) {
        // Reset while closing: nothing more to do.
    }
    conn.writer.close();
}

// TCP keepalive: the first probe after `idle` without traffic, then one
// every idle / 3 (at least 1 s); 3 unanswered probes fail the connection, so
// a source that vanished (host down, a firewall that drops everything) is
// noticed in about 2 x idle. And, where the system has it (Linux
// TCP_USER_TIMEOUT), `unacked`: data we sent that the source's TCP has not
// acknowledged for that long fails the connection too - keepalive does not
// probe while data is in flight. A zero leaves that part off. Throws
// net_error naming the option.
void set_keepalive(coio::socket& s, std::chrono::seconds idle, std::chrono::milliseconds unacked) {
    if (idle.count() > 0) {
        const auto interval = std::max(std::chrono::seconds(1), idle / 3);
        s.set_keepalive(idle, interval, 3);
    }
#if defined(TCP_USER_TIMEOUT)
    if (unacked.count() > 0) {
        const auto ms = std::min<std::chrono::milliseconds::rep>(unacked.count(), 0x7fffffff);
        s.set_option(IPPROTO_TCP, TCP_USER_TIMEOUT, static_cast<int>(ms));
    }
#else
    (void)unacked;
#endif
}

// Connect within --connect-timeout and set TCP keepalive, the
// unacknowledged-data timeout and the ACKs' send buffer. Throws net_error.
coio::task<coio::socket> connect_source(collector* c, coio::address at) {
    coio::socket s;
    bool timed_out = false;
    if (c->opts.connect_timeout.count() == 0) {
        s = co_await coio::connect(at);
    } else {
        try {
            s = co_await coio::wait_for(coio::connect(at), c->opts.connect_timeout);
        } catch (const coio::timeout_error&) {
            timed_out = true;
        }
    }
    if (timed_out) {
        throw coio::net_error(std::make_error_code(std::errc::timed_out),
                              "connect to " + at.to_string() + " (--connect-timeout)");
    }
    try {
        set_keepalive(s, c->opts.keepalive, c->opts.ack_timeout);
        // ACKs need little room (16,384 fit in 64 KiB), and a fixed buffer
        // lets --ack-timeout see a source that does not read them.
        s.set_send_buffer_size(ack_send_buffer);
    } catch (const coio::net_error& e) {
        // "setsockopt(SO_KEEPALIVE): ..." - say which connection.
        throw coio::net_error(e.code(),
                              std::string(e.what()) + " on the connection to " + at.to_string());
    }
    co_return s;
}

// Wait until the kernel has taken every queued ACK - the writer's buffer is
// empty: pull_source sets its limits to 0 - within --ack-timeout: a source
// that does not read its ACKs fills the fixed send buffer and stops taking
// more. Returns false on that timeout, after resetting the connection so
// that the queued ACKs do not keep it for ever.
coio::task<bool> drain_acks(collector* c, coio::stream_writer w) {
    if (w.write_buffer_size() == 0) {
        co_return true; // the usual case: no timer
    }
    if (c->opts.ack_timeout.count() == 0) {
        co_await w.drain();
        co_return true;
    }
    bool timed_out = false;
    try {
        co_await coio::wait_for(w.drain(), c->opts.ack_timeout);
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    if (timed_out) {
        w.abort(); // RST: the queued ACKs are dropped
    }
    co_return !timed_out;
}

// --tls-ca: the TLS handshake as a client, within --connect-timeout; the
// certificate must name the source's IP address (an IP SAN). Returns the
// error ("TLS handshake with 127.0.0.1:9000: certificate verify failed:
// ..."), empty on success; a failed handshake has closed the connection.
coio::task<std::string> start_tls(shard* sh, coio::address at, coio::stream_writer w) {
    collector* c = sh->c;
    coio::tls_options o;
    o.server_hostname = at.host();
    if (c->opts.connect_timeout.count() > 0) {
        o.handshake_timeout = c->opts.connect_timeout;
    }
    std::string error;
    try {
        co_await w.start_tls(sh->pull_tls, o);
    } catch (const coio::net_error& e) { // tls_error
        error = e.what();
    }
    co_return error;
}

// One connection: read chunks until EOF, error or cancel.
coio::task<session_end> session(shard* sh, source_stats* st, coio::stream_pair conn) {
    collector* c = sh->c;
    session_end end;
    line_assembler lines(c->opts.max_line);
    std::uint64_t unacked = 0; // complete lines appended to the output, not yet ACKed
    auto emit = [sh, st, &unacked](std::string_view text, record_kind kind, std::uint32_t part) {
        sh->emit(st->name, text, kind, part);
        if (kind == record_kind::whole || kind == record_kind::last) {
            ++unacked;
            ++st->lines;
        }
        if (kind != record_kind::whole) {
            ++st->pieces;
        }
    };
    const auto chunk_size = static_cast<std::ptrdiff_t>(c->opts.chunk_size);
    for (;;) {
        std::string chunk;
        try {
            chunk = co_await conn.reader.read(chunk_size);
        } catch (const coio::cancelled_error&) {
            end.stopped = true;
        } catch (const coio::net_error& e) {
            end.why = e.what();
            ++st->errors;
        }
        if (end.stopped || !end.why.empty()) {
            break;
        }
        if (chunk.empty()) {
            end.why = "closed by the source";
            break;
        }
        end.got_data = true;
        st->bytes += chunk.size();
        lines.feed(chunk, emit);
        if (unacked == 0) {
            // Only pieces of a long line (or nothing) so far: nothing to ACK.
            if (sh->wants_flush()) {
                const bool ok = co_await sh->flush_through(sh->end_mark(), &end.stopped);
                if (!ok) {
                    end.stopped = true;
                    break;
                }
            }
            if (end.stopped) {
                break;
            }
            continue;
        }
        // Group commit: let the other sources of this iteration append, then
        // one write(2) for all (output_sink.hpp) - at once if the buffer is
        // big already. On a loop other than 0 the whole loop's records go to
        // loop 0 as one batch, and we wait for its verdict (collector.hpp).
        const std::uint64_t mark = sh->end_mark();
        try {
            if (!sh->wants_flush()) {
                co_await coio::yield_now();
            }
        } catch (const coio::cancelled_error&) {
            end.stopped = true; // still write and ACK what we have, below
        }
        const bool written = co_await sh->flush_through(mark, &end.stopped);
        if (!written) {
            end.stopped = true; // output failed: acknowledge nothing more
            break;
        }
        conn.writer.write(ack_text(unacked));
        st->acks += unacked;
        unacked = 0;
        if (end.stopped) {
            break;
        }
        try {
            const bool progress = co_await drain_acks(c, conn.writer);
            if (!progress) {
                end.why = "no ACK progress for " + seconds_text(c->opts.ack_timeout) +
                          " (--ack-timeout): the source does not read its acknowledgements";
                ++st->errors;
            }
        } catch (const coio::cancelled_error&) {
            end.stopped = true; // the ACKs are queued; close() sends them
        } catch (const coio::net_error& e) {
            end.why = e.what();
            ++st->errors;
        }
        if (end.stopped || !end.why.empty()) {
            break;
        }
    }
    // Complete lines not acknowledged yet (a cancel in the yield above is
    // handled there): none can be left here but keep the rule in one place.
    if (unacked > 0) {
        const bool written = co_await sh->flush_through(sh->end_mark(), &end.stopped);
        if (written) {
            conn.writer.write(ack_text(unacked));
            st->acks += unacked;
        }
    }
    const std::uint32_t pieces_out = lines.pieces();
    const std::size_t dropped = lines.end_of_stream(emit);
    if (dropped > 0 || pieces_out > 0) {
        ++st->cut_lines;
        end.cut = "; dropped an unfinished line (" + std::to_string(dropped) + " bytes" +
                  (pieces_out > 0 ? ", after " + std::to_string(pieces_out) + " pieces" : "") +
                  "; not acknowledged, so the source sends it again)";
    }
    co_await close_streams(std::move(conn), end.stopped);
    co_return end;
}

} // namespace

coio::task<> pull_source(shard* sh, source_stats* st, coio::address at, bool tls) {
    collector* c = sh->c;
    backoff delays(c->opts.backoff_min, c->opts.backoff_max,
                   std::hash<std::string>{}(st->name) ^ static_cast<std::uint64_t>(at.port()));
    coio::stream_options stream_opts; // named: no aggregate temporary next to co_await (g++ 12)
    bool first = true;
    for (;;) {
        coio::stream_pair conn;
        std::string error;
        try {
            coio::socket s = co_await connect_source(c, at);
            conn = coio::make_streams(std::move(s), stream_opts);
            // drain() waits until the buffer is empty, so write() is never
            // called while the stream's background flush is sending: that
            // flush sends from the buffer, which write() may reallocate
            // meanwhile (coio's stream_writer sent freed memory in place of
            // ACKs, both backends). The kernel's send buffer is the ACKs'
            // buffer anyway.
            conn.writer.set_write_buffer_limits(0, 0);
        } catch (const coio::net_error& e) {
            error = e.what(); // "connect to 127.0.0.1:9000: Connection refused"
        }
        if (error.empty() && is_self_connection(conn.writer)) {
            // Nobody listens on a local port in the ephemeral range and the
            // kernel picked that very port for our side: TCP simultaneous
            // open connected the socket to itself. It would hold the port the
            // source wants to listen on and never deliver a line.
            conn.writer.close();
            error = "connect to " + at.to_string() + ": connected to itself (nobody listens)";
        }
        if (error.empty() && tls) {
            error = co_await start_tls(sh, at, conn.writer);
        }
        if (!error.empty()) {
            ++st->errors;
            const auto delay = delays.next();
            if (!st->failing) {
                st->failing = true;
                c->con.message("source " + st->name + ": " + error + "; retrying (backoff " +
                               std::to_string(c->opts.backoff_min.count()) + ".." +
                               std::to_string(c->opts.backoff_max.count()) + " ms)");
            }
            co_await coio::sleep(delay);
            continue;
        }
        if (!first) {
            ++st->reconnects;
        }
        if (st->failing) {
            c->con.message("source " + st->name + ": connected");
        }
        first = false;
        st->failing = false;
        st->connected = true;
        ++sh->connected;
        session_end end = co_await session(sh, st, std::move(conn));
        st->connected = false;
        --sh->connected;
        if (end.stopped) {
            co_return;
        }
        if (end.got_data) {
            delays.reset();
        }
        st->failing = true; // report the recovery
        c->con.message("source " + st->name + ": " + end.why + end.cut + "; reconnecting");
        co_await coio::sleep(delays.next());
    }
}

} // namespace logcollect
