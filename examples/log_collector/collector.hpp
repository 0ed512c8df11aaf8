// log_collector/collector.hpp - what the tasks of one collector share.
//
// One `collector` lives in main()'s frame for the whole run; every task gets a
// pointer to it (coroutine parameters are by value: the pointer is copied, the
// collector outlives all tasks because run_collector awaits them all before
// it returns).
#pragma once

#include "options.hpp"
#include "output_sink.hpp"
#include "record_format.hpp"
#include "stats.hpp"

#include <coio/task_handle.hpp>

#include <chrono>
#include <cstdint>
#include <deque>
#include <string>
#include <string_view>
#include <unordered_set>

namespace coio {
class socket;
}

namespace logcollect {

struct collector {
    collector(options o, bool live_status)
        : opts(std::move(o)), sink(opts.output, opts.sync), fmt(opts.format), con(live_status) {}

    options opts;
    output_sink sink;
    record_formatter fmt;
    console con;
    std::deque<source_stats> sources;               // one per opts.sources entry (stable addresses)
    source_stats push;                              // all push connections together
    std::size_t connected = 0;                      // pull sources connected now
    std::size_t push_connections = 0;               // push connections open now
    std::unordered_set<coio::socket*> push_sockets; // closed at shutdown
    bool stopping = false;
    std::string failure;           // the first fatal error (exit 1)
    coio::task_handle<int> waiter; // main waits on it; cancelled to wake main on failure
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    // Append a record to the output buffer.
    void emit(std::string_view source, std::string_view text, record_kind kind, std::uint32_t part,
              std::string_view framing = {}) {
        fmt.append(sink.buffer(), record_meta{source, kind, part, framing}, text);
    }

    // Write out everything up to `mark`. On an output failure, records the
    // failure, wakes main to shut down (exit 1) and returns false: the caller
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
            if (waiter.valid()) {
                waiter.cancel();
            }
        }
    }
};

} // namespace logcollect
