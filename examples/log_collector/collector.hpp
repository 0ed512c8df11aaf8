// log_collector/collector.hpp - what the tasks of one collector share.
//
// One `collector` lives in main()'s frame for the whole run; every task gets a
// pointer to it (coroutine parameters are by value: the pointer is copied, the
// collector outlives all tasks because run_loops returns only after every
// task of every loop has finished).
//
// --loops N: the collector runs on N event loops, one thread each
// (coio::run_loops). Each loop has a `shard`: the pull sources given to it
// (source i on loop i % N), its own push listeners (SO_REUSEPORT, one per
// loop on the same port), its counters and its own record formatter. What
// the loops share is read-only (opts) or thread-safe (con, seq). The output
// (`sink`), the stop event and the failure belong to loop 0, the writer.
// A shard on another loop formats its records into its own buffer (the
// outbox) and hands batches of them to loop 0 (shard.cpp); a source
// acknowledges its lines only once loop 0 says the batch was written. With
// N = 1 loop 0's shard appends straight to the sink's buffer, as the
// single-loop collector always did.
//
// How the run ends: `stop` is an event (loop 0) that the first SIGINT/SIGTERM
// or the first fatal error (fail(), from any loop) sets; run_collector waits
// for it, then stops every shard (main.cpp).
#pragma once

#include "options.hpp"
#include "output_sink.hpp"
#include "record_format.hpp"
#include "stats.hpp"

#include <coio/loops.hpp>
#include <coio/net/server.hpp>
#include <coio/net/tls.hpp>
#include <coio/sync/event.hpp>
#include <coio/task.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <deque>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace logcollect {

struct collector;

// Push connections closed by a timeout since housekeeping last said so.
struct expired_counts {
    std::size_t idle = 0;    // nothing received for --idle-timeout
    std::size_t message = 0; // a message unfinished for --message-timeout
};

// One loop's part of the collector. Used on that loop's thread only while
// the loops run (main reads it after they have ended).
class shard {
public:
    shard(collector* c, std::size_t index);
    shard(const shard&) = delete;
    shard& operator=(const shard&) = delete;

    collector* const c;
    const std::size_t index;                  // the loop's run_loops index
    record_formatter fmt;                     // this loop's records (seq shared)
    std::vector<source_stats*> sources;       // the pull sources on this loop
    std::vector<coio::address> addresses;     // and their addresses
    std::vector<bool> tls;                    // and whether each is a TLS source
    source_stats push;                        // this loop's push connections together
    std::size_t connected = 0;                // pull sources connected now
    std::optional<coio::server> listener;     // --listen on this loop
    std::optional<coio::server> tls_listener; // --listen-tls on this loop
    expired_counts push_expired;              // push_server.cpp counts, housekeeping reports
    coio::tls_context pull_tls;               // --tls-ca: the sources' client context, else empty
    bool stopping = false;                    // this loop is stopping (loop 0's stop reached it)
    bool finished = false;                    // its stop is done (finish_shard)

    [[nodiscard]] bool is_writer() const noexcept { return index == 0; }

    // Append a record to this loop's output buffer.
    void emit(std::string_view source, std::string_view text, record_kind kind, std::uint32_t part,
              std::string_view framing = {});
    // The logical end of everything appended here so far (a mark to flush).
    [[nodiscard]] std::uint64_t end_mark() const noexcept;
    // The buffer is big enough to write out now.
    [[nodiscard]] bool wants_flush() const noexcept;
    // Have everything up to `mark` written out: on loop 0 the sink's
    // flush_through (no suspension); elsewhere the outbox is handed to loop
    // 0 (one batch in flight per loop: whoever comes while one is on its way
    // waits for it, then ships what gathered meanwhile) and this resumes, on
    // this loop, with loop 0's verdict. false: the output failed (the
    // collector is stopping): acknowledge nothing. Not a cancellation point:
    // the batch is awaited whatever happens; a cancel (the stop) that
    // arrives meanwhile sets *stopped instead.
    coio::task<bool> flush_through(std::uint64_t mark, bool* stopped);

private:
    coio::task<> ship(); // one batch to loop 0

    std::string m_out;        // the outbox (loops other than 0)
    std::uint64_t m_base = 0; // bytes handed to loop 0 so far
    std::uint64_t m_done = 0; // of them, the ones loop 0 has answered for
    bool m_shipping = false;  // a batch is on its way
    bool m_failed = false;    // loop 0 said the output failed
    coio::event m_shipped;    // set when a batch comes back (then cleared)
};

struct collector {
    collector(options o, bool live_status)
        : opts(std::move(o)), fmt(opts.format, &seq), con(live_status),
          sink(
              opts.output, opts.sync,
              [this](std::string& out, std::uint64_t torn) { fmt.append_torn_marker(out, torn); },
              [this](const std::string& text) { con.message(text); }) {}

    options opts;
    std::atomic<std::uint64_t> seq{0}; // record numbers, for every loop's formatter
    record_formatter fmt;              // loop 0's, for the sink's torn-record markers
    console con;
    output_sink sink;                  // after fmt and con: it uses them from its constructor on
    std::deque<source_stats> sources;  // one per opts.sources entry (stable addresses)
    std::deque<shard> shards;          // one per loop
    std::vector<coio::loop_ref> loops; // set by loop 0's main before anything runs elsewhere
    // --listen, --listen-tls with port 0: the port loop 0's listener got,
    // which the other loops then bind too (written before they start).
    std::uint16_t listen_port = 0;
    std::uint16_t listen_tls_port = 0;
    coio::event stop; // loop 0. set: stop (a signal, or fail())
    std::chrono::steady_clock::time_point started = std::chrono::steady_clock::now();

    // Loop 0: write out everything up to `mark`. On an output failure,
    // records the failure, stops the collector (exit 1) and returns false:
    // the caller must not acknowledge anything.
    bool flush_through(std::uint64_t mark) {
        if (sink.flush_through(mark)) {
            return true;
        }
        fail(sink.error());
        return false;
    }

    // Stop with exit status 1 and say why (the first failure only). From any
    // loop: the failure is recorded at once (main reads it after the loops
    // have ended, for the exit status), and another loop hands the stop to
    // loop 0 (refused if the loops have ended: nothing is left to stop).
    void fail(const std::string& what);
    // The first failure, or empty. Any thread.
    [[nodiscard]] std::string failure() const;

private:
    mutable std::mutex m_failure_mutex;
    std::string m_failure; // the first fatal error (exit 1)
};

// The shard of pull source number i (opts.sources order).
[[nodiscard]] inline std::size_t shard_of_source(std::size_t i, std::size_t loops) noexcept {
    return i % loops;
}

} // namespace logcollect
