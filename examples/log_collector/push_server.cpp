// log_collector/push_server.cpp - syslog over TCP into the same output
// (push_server.hpp).
#include "push_server.hpp"

#include "syslog_framing.hpp"

#include <coio/cancel.hpp>
#include <coio/net/error.hpp>
#include <coio/net/stream.hpp>
#include <coio/net/tls.hpp>
#include <coio/sleep.hpp>
#include <coio/timeout.hpp>

#include <chrono>
#include <string>
#include <system_error>
#include <utility>

namespace logcollect {

namespace {

using clock = std::chrono::steady_clock;

constexpr std::ptrdiff_t read_size = 4096; // one pool buffer's worth

// When the message that is unfinished now began (--message-timeout). It
// starts again with every message that ends, so a sender of long messages
// in many reads is not cut, but one trickling a byte now and then is.
class message_clock {
public:
    // Data arrived: `finished` - a message ended in it; `unfinished` - a
    // message is begun and not finished after it.
    void on_data(clock::time_point now, bool finished, bool unfinished) noexcept {
        if (!unfinished) {
            m_since = {};
        } else if (finished || m_since == clock::time_point{}) {
            m_since = now;
        }
    }
    // A message is unfinished.
    [[nodiscard]] bool running() const noexcept { return m_since != clock::time_point{}; }
    [[nodiscard]] clock::time_point since() const noexcept { return m_since; }

private:
    clock::time_point m_since; // {} if no message is unfinished
};

// How the reads of one connection ended.
enum class read_end { data, eof, stopped, idle, message, error };

coio::task<> push_connection(shard* sh, coio::stream_reader reader, coio::stream_writer writer,
                             bool tls) {
    collector* c = sh->c;
    source_stats& st = sh->push;
    const std::string prefix = tls ? "push tls " : "push ";
    std::string name = prefix + "?";
    try {
        name = prefix + writer.peer_address().to_string();
    } catch (const std::exception&) {
        // already gone; the reads below end at once
    }
    ++st.reconnects; // counts connections for push
    syslog_deframer frames(push_share(c->opts), c->opts.max_frame);
    message_clock message;
    auto emit = [sh, &st, &name](std::string_view text, record_kind kind, std::uint32_t part,
                                 std::string_view framing) {
        sh->emit(name, text, kind, part, framing);
        if (kind == record_kind::whole || kind == record_kind::last) {
            ++st.lines;
        }
        if (kind != record_kind::whole) {
            ++st.pieces;
        }
    };
    read_end end = read_end::data;
    while (end == read_end::data && !sh->stopping) {
        // Up to read_size bytes. While a message is unfinished the read is
        // bounded by --message-timeout; otherwise no timer runs here (the
        // stream's idle_timeout bounds a sender between messages).
        std::string data;
        std::string error;
        try {
            if (message.running() && c->opts.message_timeout.count() > 0) {
                const clock::time_point deadline = message.since() + c->opts.message_timeout;
                data = co_await coio::timeout_at(deadline, reader.read(read_size));
            } else {
                data = co_await reader.read(read_size);
            }
            if (data.empty()) {
                end = read_end::eof;
            }
        } catch (const coio::timeout_error&) {
            end = read_end::message;
        } catch (const coio::cancelled_error&) {
            end = read_end::stopped; // close_clients() at shutdown
        } catch (const coio::net_error& e) {
            if (e.code() == std::errc::timed_out) {
                end = read_end::idle; // the stream's idle_timeout closed it
            } else {
                end = read_end::error;
                error = e.what();
            }
        }
        if (end == read_end::idle) {
            ++st.errors;
            ++sh->push_expired.idle; // housekeeping says so, for all at once
        } else if (end == read_end::message) {
            ++st.errors;
            ++sh->push_expired.message;
        } else if (end == read_end::error) {
            ++st.errors;
            c->con.message(name + ": " + error);
        }
        if (end != read_end::data) {
            break;
        }
        st.bytes += data.size();
        const std::uint64_t before = sh->fmt.records();
        const std::uint64_t messages = st.lines;
        const std::uint64_t framing_errors = frames.framing_errors();
        frames.feed(data, emit);
        message.on_data(coio::now(), st.lines != messages, frames.in_message());
        if (frames.framing_errors() != framing_errors) {
            st.errors += frames.framing_errors() - framing_errors;
            if (framing_errors == 0) { // once per connection
                c->con.message(name + ": octet count above --max-frame " +
                               std::to_string(c->opts.max_frame) +
                               ": framing error, reading that frame up to LF instead");
            }
        }
        if (sh->fmt.records() != before || sh->wants_flush()) {
            // Group commit, as the pull sources do (no ACK to wait for, but
            // records should not sit in memory either; and on a loop other
            // than 0, waiting for the writer is the back-pressure).
            const std::uint64_t mark = sh->end_mark();
            bool stopped = false;
            try {
                if (!sh->wants_flush()) {
                    co_await coio::yield_now();
                }
            } catch (const coio::cancelled_error&) {
                stopped = true; // still write what we have, below
            }
            const bool written = co_await sh->flush_through(mark, &stopped);
            if (stopped) {
                end = read_end::stopped;
            }
            if (!written) {
                break;
            }
        }
    }
    writer.close(); // now (a FIN), not when the frame ends

    if (frames.end_of_stream(emit)) {
        ++st.errors;
        c->con.message(name + ": connection ended inside an octet-counted frame; wrote the part "
                              "that arrived");
    }
    bool stopped = false;
    (void)co_await sh->flush_through(sh->end_mark(),
                                     &stopped); // the last message, if it had no trailer
}

struct push_handler {
    shard* sh;
    bool tls;
    coio::task<> operator()(coio::stream_reader r, coio::stream_writer w) const {
        return push_connection(sh, std::move(r), std::move(w), tls);
    }
};

} // namespace

coio::task<coio::server> start_push_server(shard* sh, bool tls) {
    collector* c = sh->c;
    const coio::address& where = tls ? *c->opts.listen_tls : *c->opts.listen;
    // Named, not temporaries next to the co_await (docs/design.md, g++ 12).
    push_handler handler{sh, tls};
    coio::server_options opts;
    opts.max_connections = loop_connections(c->opts); // accepting pauses at the cap
    opts.stream.idle_timeout = c->opts.idle_timeout;
    // Reads of 4 KiB at most: a connection holds its share of --push-memory
    // plus one such read (the reader keeps what is left of a read between two
    // read(read_size) calls; with reads grown to 64 KiB, 2,000 senders of a
    // flood held 136 MiB of it at once).
    opts.stream.small_reads = true;
    // Several loops: one listener each on the same port (the one loop 0 got).
    opts.reuse_port = loop_count(c->opts) > 1;
    const std::uint16_t port = sh->index == 0 ? where.port()
                               : tls          ? c->listen_tls_port
                                              : c->listen_port;
    std::string host = where.host();
    if (!tls) {
        coio::server srv = co_await coio::start_server(handler, host, port, opts);
        co_return srv;
    }
    coio::tls_context_options ctx_opts;
    ctx_opts.cert_file = c->opts.tls_cert;
    ctx_opts.key_file = c->opts.tls_key;
    coio::tls_context ctx = coio::tls_context::server(std::move(ctx_opts));
    coio::tls_options tls_opts;
    if (c->opts.message_timeout.count() > 0) {
        // A handshake is bounded as an unfinished message is (else coio's 60 s).
        tls_opts.handshake_timeout = c->opts.message_timeout;
    }
    coio::server srv = co_await coio::start_server(handler, host, port, ctx, opts, tls_opts);
    co_return srv;
}

void report_push_expired(shard* sh) {
    collector* c = sh->c;
    const expired_counts n = std::exchange(sh->push_expired, expired_counts{});
    if (n.idle > 0) {
        c->con.message("push: closed " + std::to_string(n.idle) +
                       " connection(s) that sent nothing for " +
                       seconds_text(c->opts.idle_timeout) + " (--idle-timeout)");
    }
    if (n.message > 0) {
        c->con.message("push: closed " + std::to_string(n.message) +
                       " connection(s) whose message stayed unfinished for " +
                       seconds_text(c->opts.message_timeout) + " (--message-timeout)");
    }
}

void report_push_cap(shard* sh, const coio::server& srv, bool tls, push_report_state& r) {
    collector* c = sh->c;
    const coio::server_stats s = srv.stats();
    if (s.active < loop_connections(c->opts)) {
        r.at_cap = false;
    } else if (s.limit_waits != r.limit_waits && !r.at_cap) {
        r.at_cap = true;
        const std::string cap = loop_count(c->opts) == 1
                                    ? "(--max-connections)"
                                    : "on loop " + std::to_string(sh->index) +
                                          " (its share of --max-connections " +
                                          std::to_string(c->opts.max_connections) + ")";
        c->con.message(std::string(tls ? "push tls: " : "push: ") + std::to_string(s.active) +
                       " connections open " + cap + ": new senders wait until one ends");
    }
    r.limit_waits = s.limit_waits;
}

} // namespace logcollect
