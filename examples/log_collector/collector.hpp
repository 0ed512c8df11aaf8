// log_collector/collector.hpp - what the tasks of one collector share.
//
// One `collector` lives in main()'s frame for the whole run; every task gets a
// pointer to it (coroutine parameters are by value: the pointer is copied, the
// collector outlives all tasks because run_collector awaits them all before
// it returns).
//
// How the run ends: `stop` is an event that the first SIGINT/SIGTERM or the
// first fatal error (fail()) sets; run_collector waits for it, then stops
// the tasks (main.cpp).
#pragma once

#include "options.hpp"
#include "output_sink.hpp"
#include "record_format.hpp"
#include "stats.hpp"

#include <coio/net/tls.hpp>
#include <coio/sync/event.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>

namespace coio {
class server;
}

namespace logcollect {

// Push connections closed by a timeout since housekeeping last said so.
struct expired_counts {
    std::size_t idle = 0;    // nothing received for --idle-timeout
    std::size_t message = 0; // a message unfinished for --message-timeout
};

struct collector {
    collector(options o, bool live_status)
        : opts(std::move(o)), fmt(opts.format), con(live_status),
          sink(
              opts.output, opts.sync,
              [this](std::string& out, std::uint64_t torn) { fmt.append_torn_marker(out, torn); },
              [this](const std::string& text) { con.message(text); }) {}

    options opts;
    record_formatter fmt;
    console con;
    output_sink sink;                 // after fmt and con: it uses them from its constructor on
    std::deque<source_stats> sources; // one per opts.sources entry (stable addresses)
    source_stats push;                // all push connections together
    std::size_t connected = 0;        // pull sources connected now
    // --listen, --listen-tls: run_collector's servers (null when not given).
    const coio::server* push_server = nullptr;
    const coio::server* push_tls_server = nullptr;
    expired_counts push_expired; // push_server.cpp counts, housekeeping reports
    coio::tls_context pull_tls;  // --tls-ca: the sources' client context, else empty
    coio::event stop;            // set: stop (a signal, or fail())
    std::string failure;         // the first fatal error (exit 1)
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    // Append a record to the output buffer.
    void emit(std::string_view source, std::string_view text, record_kind kind, std::uint32_t part,
              std::string_view framing = {}) {
        fmt.append(sink.buffer(), record_meta{source, kind, part, framing}, text);
    }

    // Write out everything up to `mark`. On an output failure, records the
    // failure, stops the collector (exit 1) and returns false: the caller
    // must not acknowledge anything.
    bool flush_through(std::uint64_t mark) {
        if (sink.flush_through(mark)) {
            return true;
        }
        fail(sink.error());
        return false;
    }

    void fail(const std::string& what) {
        if (failure.empty()) {
            failure = what;
            con.message(what);
            stop.set();
        }
    }
};

} // namespace logcollect
