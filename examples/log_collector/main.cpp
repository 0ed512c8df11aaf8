// coio-logcollect - a streaming log collector on one coio event loop, or on
// N with --loops N (collector.hpp: one writer loop, records handed to it).
//
// What it shows: many long-lived connections, one task each, sharing one
// output with group commit (output_sink.hpp); line reassembly from fixed-size
// reads in bounded memory (line_assembler.hpp); acknowledgements that mean
// "written" (source_task.cpp); reconnects with backoff; syslog over TCP
// (push_server.cpp); a task_group for the tasks, an event and signal
// handlers for a clean stop; work spread over loops (shard_run.hpp).
//
// Run:  ./build/examples/log_collector/log_source --port 0 --lines 1000 &
//       ./build/examples/log_collector/coio-logcollect 127.0.0.1:PORT -o logs.txt
// and stop it with Ctrl-C: it prints a summary per source. --help has the
// delivery guarantee and the over-long-line policy; README.md in this folder
// the details.
#include "collector.hpp"
#include "options.hpp"
#include "shard_run.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/loops.hpp>
#include <coio/signal.hpp>
#include <coio/task_handle.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace logcollect {

namespace {

const char* signal_name(int sig) {
    return sig == SIGINT ? "SIGINT" : "SIGTERM";
}

// SIGINT/SIGTERM: set c->stop, once. A second one while stopping gives up
// waiting for the sources: nothing unwritten was acknowledged, so the
// sources send it again.
void request_stop(collector* c, int sig) {
    if (c->stop.is_set()) {
        c->con.message(std::string("second ") + signal_name(sig) +
                       ": exiting now (what was not acknowledged will be sent again)");
        std::_Exit(exit_failure);
    }
    c->con.message(std::string("stopping on ") + signal_name(sig) +
                   ": writing and acknowledging what was received");
    c->stop.set();
}

// The signals, asyncio's loop.add_signal_handler way: the callbacks run on
// the loop thread, from the first loop iteration until this object goes.
// SIGHUP reopens the output (logrotate's postrotate).
class signal_handlers {
public:
    explicit signal_handlers(collector* c) {
        coio::add_signal_handler(SIGINT, [c] { request_stop(c, SIGINT); });
        coio::add_signal_handler(SIGTERM, [c] { request_stop(c, SIGTERM); });
        coio::add_signal_handler(SIGHUP, [c] {
            if (!c->sink.reopen() && c->sink.failed()) {
                c->fail(c->sink.error());
            }
        });
    }
    signal_handlers(const signal_handlers&) = delete;
    signal_handlers& operator=(const signal_handlers&) = delete;
    ~signal_handlers() {
        for (int sig : {SIGINT, SIGTERM, SIGHUP}) {
            coio::remove_signal_handler(sig);
        }
    }
};

// Loop 0's main task: the signals, every loop's setup and run (shard_run.hpp),
// the stop, the last write.
coio::task<int> run_collector(collector* c) {
    c->loops = coio::loop_ref::all();
    signal_handlers signals(c);
    // Each loop sets itself up on its own thread, loop 0 first: with port 0
    // the others bind the port it got.
    std::size_t ready = 0;
    for (; ready < c->shards.size(); ++ready) {
        const bool ok = co_await on_loop(c, ready, setup_shard(&c->shards[ready]));
        if (!ok) {
            break;
        }
    }
    if (ready < c->shards.size()) {
        for (std::size_t k = 0; k < ready; ++k) {
            co_await on_loop(c, k, finish_shard(&c->shards[k]));
        }
        co_return exit_failure;
    }

    say_listening(c);

    std::vector<coio::task_handle<>> loops;
    for (std::size_t k = 0; k < c->shards.size(); ++k) {
        loops.push_back(coio::create_task(on_loop(c, k, run_shard(&c->shards[k])),
                                          "loop " + std::to_string(k)));
    }
    co_await c->stop.wait(); // a signal, or collector::fail() on any loop

    // Every loop stops as one loop did (run_shard): no new push connections,
    // each source writes and acknowledges what it has, then closes. The
    // other loops hand their last records to this one before they end.
    for (coio::task_handle<>& h : loops) {
        h.cancel();
    }
    for (coio::task_handle<>& h : loops) {
        try {
            co_await h;
        } catch (const coio::cancelled_error&) {
            // a loop's run_shard returns; the hand-off may still say cancelled
        }
    }
    // A loop whose run_shard never ran (the stop came before it picked the
    // hand-off up, e.g. a signal during setup) still has its listeners and
    // push connections: stop them there too, all loops at once. A no-op
    // where run_shard finished.
    std::vector<coio::task_handle<>> finishing;
    for (std::size_t k = 0; k < c->shards.size(); ++k) {
        finishing.push_back(coio::create_task(on_loop(c, k, finish_shard(&c->shards[k])),
                                              "finish loop " + std::to_string(k)));
    }
    for (coio::task_handle<>& h : finishing) {
        co_await h;
    }
    c->flush_through(c->sink.end_mark()); // push records, "aborted" records
    co_return c->failure().empty() ? exit_ok : exit_failure;
}

// Every loop's main task: loop 0's runs the collector; the others have
// nothing of their own, their work is handed to them (run_loops serves it
// until loop 0's main has finished).
coio::task<> idle_main() {
    co_return;
}
coio::task<> writer_main(collector* c, int* rc) {
    *rc = co_await run_collector(c);
}
struct loop_mains {
    collector* c;
    int* rc;
    coio::task<> operator()(std::size_t i) const {
        return i == 0 ? writer_main(c, rc) : idle_main();
    }
};

// With several loops, after the summary: what each loop did (its pull
// sources, the lines it wrote, the push connections it accepted).
void print_loops(std::FILE* out, const std::deque<shard>& shards) {
    for (const shard& sh : shards) {
        totals t;
        for (const source_stats* st : sh.sources) {
            add_to(t, *st);
        }
        add_to(t, sh.push);
        std::fprintf(out, "loop %zu: %zu pull sources, %llu lines, %llu push connections\n",
                     sh.index, sh.sources.size(), static_cast<unsigned long long>(t.lines),
                     static_cast<unsigned long long>(sh.push.reconnects));
    }
    std::fflush(out);
}

// A collector with 10,000 sources needs 10,000 fds (push connections more):
// raise the soft limit to the hard one.
void raise_fd_limit() {
    rlimit rl{};
    if (::getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        (void)::setrlimit(RLIMIT_NOFILE, &rl);
    }
}

} // namespace

} // namespace logcollect

int main(int argc, char** argv) {
    using namespace logcollect;
    options opts;
    switch (parse_options(argc, argv, opts)) {
    case parse_result::run:
        break;
    case parse_result::exit_ok:
        return exit_ok;
    case parse_result::usage_error:
        return exit_usage;
    case parse_result::failure:
        return exit_failure;
    }
    // A closed stdout must be an error we report, not a silent death.
    std::signal(SIGPIPE, SIG_IGN);
    raise_fd_limit();

    const bool records_on_tty = opts.output == "-" && ::isatty(STDOUT_FILENO) == 1;
    const bool live =
        opts.status >= 0 ? opts.status == 1 : ::isatty(STDERR_FILENO) == 1 && !records_on_tty;
    std::optional<collector> c;
    try {
        c.emplace(std::move(opts), live);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "coio-logcollect: %s\n", e.what());
        return exit_failure;
    }
    const std::size_t n = loop_count(c->opts);
    for (std::size_t k = 0; k < n; ++k) {
        c->shards.emplace_back(&*c, k);
    }
    for (std::size_t i = 0; i < c->opts.sources.size(); ++i) {
        source_stats& st = c->sources.emplace_back();
        st.name = c->opts.sources[i].to_string();
        shard& sh = c->shards[shard_of_source(i, n)];
        sh.sources.push_back(&st);
        sh.addresses.push_back(c->opts.sources[i]);
        sh.tls.push_back(c->opts.source_tls[i]);
    }
    int rc = exit_failure;
    loop_mains mains{&*c, &rc};
    try {
        try {
            coio::run_loops(n, mains);
        } catch (const coio::loop_error& e) {
            e.rethrow_cause(); // say what failed, not which loop
        }
    } catch (const std::exception& e) {
        c->con.clear_status();
        std::fprintf(stderr, "coio-logcollect: %s\n", e.what());
        return exit_failure;
    }
    c->con.clear_status();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c->started).count();
    // One row for push, whichever loop took the connection.
    source_stats push;
    push.name = c->shards[0].push.name;
    for (const shard& sh : c->shards) {
        add_to(push, sh.push);
    }
    print_summary(stderr, c->sources, push_listeners(c->opts) > 0 ? &push : nullptr, 64, secs,
                  c->sink.name());
    if (n > 1) {
        print_loops(stderr, c->shards);
    }
    // A failure on another loop may come after loop 0's main returned.
    const std::string failure = c->failure();
    if (!failure.empty()) {
        std::fprintf(stderr, "coio-logcollect: failed: %s\n", failure.c_str());
        rc = exit_failure;
    }
    return rc;
}
