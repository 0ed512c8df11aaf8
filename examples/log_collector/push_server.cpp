// log_collector/push_server.cpp - syslog over TCP into the same output
// (push_server.hpp).
#include "push_server.hpp"

#include "syslog_framing.hpp"

#include <coio/cancel.hpp>
#include <coio/net/socket.hpp>
#include <coio/sleep.hpp>

#include <string>
#include <utility>

namespace logcollect {

namespace {

coio::task<> push_connection(collector* c, coio::socket s) {
    source_stats& st = c->push;
    if (!c->push_conns.admit()) { // the cap (push_clients.hpp): close this one at once
        ++st.errors;
        if (c->push_conns.refused_in_a_row() == 1) {
            c->con.message("push: " + std::to_string(c->push_conns.size()) +
                           " connections open (--max-connections): closing new ones until one "
                           "ends");
        }
        co_return;
    }
    std::string name = "push ?";
    try {
        name = "push " + s.peer_address().to_string();
    } catch (const std::exception&) {
        // already gone; the reads below end at once
    }
    ++st.reconnects;                          // counts connections for push
    push_client registered(c->push_conns, s); // closed at shutdown (push_clients.hpp)
    syslog_deframer frames(push_share(c->opts), c->opts.max_frame);
    auto emit = [c, &st, &name](std::string_view text, record_kind kind, std::uint32_t part,
                                std::string_view framing) {
        c->emit(name, text, kind, part, framing);
        if (kind == record_kind::whole || kind == record_kind::last) {
            ++st.lines;
        }
        if (kind != record_kind::whole) {
            ++st.pieces;
        }
    };
    while (!c->stop.is_set()) {
        // A buffer lent by the loop, only once data is there: a waiting
        // connection holds none (the deframer keeps what it must).
        coio::chunk_result r = co_await s.read_chunk();
        if (!r) {
            if (registered.expired()) {
                ++st.errors; // a timeout (housekeeping says so, for all at once)
            } else if (r.status != coio::io_status::eof && r.status != coio::io_status::cancelled) {
                ++st.errors;
                c->con.message(name + ": " + r.error.message());
            }
            break;
        }
        st.bytes += r.data.size();
        const std::uint64_t before = c->fmt.records();
        const std::uint64_t messages = st.lines;
        const std::uint64_t framing_errors = frames.framing_errors();
        frames.feed(r.data.view(), emit);
        r.data.reset(); // not held across the yield below
        registered.on_data(push_client::clock::now(), st.lines != messages, frames.in_message());
        if (frames.framing_errors() != framing_errors) {
            st.errors += frames.framing_errors() - framing_errors;
            if (framing_errors == 0) { // once per connection
                c->con.message(name + ": octet count above --max-frame " +
                               std::to_string(c->opts.max_frame) +
                               ": framing error, reading that frame up to LF instead");
            }
        }
        if (c->fmt.records() != before || c->sink.wants_flush()) {
            // Group commit, as the pull sources do (no ACK to wait for, but
            // records should not sit in memory either).
            const std::uint64_t mark = c->sink.end_mark();
            if (!c->sink.wants_flush()) {
                co_await coio::yield_now();
            }
            if (!c->flush_through(mark)) {
                break;
            }
        }
    }
    if (frames.end_of_stream(emit)) {
        ++st.errors;
        c->con.message(name + ": connection ended inside an octet-counted frame; wrote the part "
                              "that arrived");
    }
    c->flush_through(c->sink.end_mark()); // the last message, if it had no trailer
}

struct push_handler {
    collector* c;
    coio::task<> operator()(coio::socket s) const { return push_connection(c, std::move(s)); }
};

} // namespace

coio::task<coio::server> start_push_server(collector* c) {
    c->push.name = "push " + c->opts.listen->to_string();
    // Named, not temporaries next to the co_await (docs/design.md, g++ 12).
    push_handler handler{c};
    coio::server_options opts;
    std::string host = c->opts.listen->host();
    coio::server srv = co_await coio::start_server(handler, host, c->opts.listen->port(), opts);
    co_return srv;
}

} // namespace logcollect
