// coio-logcollect - a streaming log collector on one coio event loop.
//
// What it shows: many long-lived connections, one task each, sharing one
// output with group commit (output_sink.hpp); line reassembly from fixed-size
// reads in bounded memory (line_assembler.hpp); acknowledgements that mean
// "written" (source_task.cpp); reconnects with backoff; syslog over TCP
// (push_server.cpp); signals (coio::signal_set) for a clean stop.
//
// Run:  ./build/examples/log_collector/log_source --port 0 --lines 1000 &
//       ./build/examples/log_collector/coio-logcollect 127.0.0.1:PORT -o logs.txt
// and stop it with Ctrl-C: it prints a summary per source. --help has the
// delivery guarantee and the over-long-line policy; README.md in this folder
// the details.
#include "collector.hpp"
#include "options.hpp"
#include "push_server.hpp"
#include "source_task.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/error.hpp>
#include <coio/signal.hpp>
#include <coio/sleep.hpp>
#include <coio/task_handle.hpp>
#include <coio/timeout.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <string>
#include <vector>

namespace logcollect {

namespace {

constexpr auto shutdown_timeout = std::chrono::seconds(5);

// `signals` lives in run_collector's frame, which awaits this task (or
// cancels and awaits it) before it ends.
coio::task<int> wait_signal(coio::signal_set* signals) {
    co_return co_await signals->wait();
}

// A second signal while stopping: give up waiting for the sources. Nothing
// unwritten was acknowledged, so the sources send it again.
coio::task<> exit_on_second_signal(collector* c, coio::signal_set* signals) {
    const int sig = co_await signals->wait();
    c->con.message(std::string("second ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                   ": exiting now (what was not acknowledged will be sent again)");
    std::_Exit(exit_failure);
}

// Redraw the status line, or print a stats line now and then.
coio::task<> run_ticker(collector* c) {
    const bool live = c->con.live();
    const auto every = live ? std::chrono::milliseconds(500) : c->opts.stats_interval;
    if (every.count() == 0) {
        co_return;
    }
    rate_meter meter;
    meter.sample(sum(c->sources, &c->push));
    for (;;) {
        co_await coio::sleep(every);
        const totals t = sum(c->sources, &c->push);
        const rate_meter::rates r = meter.sample(t);
        const std::string text =
            status_text(c->connected, c->sources.size(), t, r, c->push_connections);
        if (live) {
            c->con.status(text);
        } else {
            c->con.message("stats: " + text);
        }
    }
}

// Cancel, then await, every source task.
coio::task<> stop_all(collector* c, std::vector<coio::task_handle<>> tasks) {
    for (coio::task_handle<>& t : tasks) {
        t.cancel();
    }
    for (coio::task_handle<>& t : tasks) {
        std::string error;
        try {
            co_await t;
        } catch (const coio::cancelled_error&) {
            // the normal way for a source to end
        } catch (const std::exception& e) {
            error = e.what(); // a bug: say so, and stop the others all the same
        }
        if (!error.empty()) {
            c->fail("task " + std::string(t.name()) + " failed: " + error);
        }
    }
}

coio::task<int> run_collector(collector* c) {
    coio::signal_set signals{SIGINT, SIGTERM};
    std::optional<coio::server> push;
    if (c->opts.listen) {
        std::string error;
        try {
            coio::server srv = co_await start_push_server(c);
            push.emplace(std::move(srv));
        } catch (const coio::net_error& e) {
            error = e.what();
        }
        if (!error.empty()) {
            c->con.message("cannot listen for push senders: " + error);
            co_return exit_failure;
        }
        c->con.message("push: listening on " + push->local_address().to_string());
    }

    std::vector<coio::task_handle<>> tasks;
    tasks.reserve(c->sources.size());
    for (std::size_t i = 0; i < c->sources.size(); ++i) {
        source_stats* st = &c->sources[i];
        tasks.push_back(coio::create_task(pull_source(c, st, c->opts.sources[i]), st->name));
    }
    coio::task_handle<> ticker = coio::create_task(run_ticker(c), "ticker");
    c->waiter = coio::create_task(wait_signal(&signals), "signals");

    int sig = 0;
    try {
        sig = co_await c->waiter; // a signal, or cancelled by collector::fail()
    } catch (const coio::cancelled_error&) {
        sig = 0;
    }
    if (sig != 0) {
        c->con.message(std::string("stopping on ") + (sig == SIGINT ? "SIGINT" : "SIGTERM") +
                       ": writing and acknowledging what was received");
    }

    // Stop: no new push connections; end the reads; let every source write
    // and acknowledge what it has, then close.
    c->stopping = true;
    coio::task_handle<> impatient =
        coio::create_task(exit_on_second_signal(c, &signals), "second signal");
    if (push) {
        push->close();
        close_push_connections(c);
    }
    bool timed_out = false;
    const auto give_up = std::chrono::steady_clock::now() + shutdown_timeout;
    try {
        co_await coio::timeout_at(give_up, stop_all(c, std::move(tasks)));
        if (push) {
            co_await coio::timeout_at(give_up, push->wait_closed());
        }
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    if (timed_out) {
        c->con.message("some connections did not close within 5 s; exiting anyway");
    }
    for (coio::task_handle<>* t : {&ticker, &impatient}) {
        t->cancel();
        try {
            co_await *t;
        } catch (const coio::cancelled_error&) {
        }
    }
    c->flush_through(c->sink.end_mark()); // push records, "aborted" records
    co_return c->failure.empty() ? exit_ok : exit_failure;
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
    for (const coio::address& a : c->opts.sources) {
        c->sources.emplace_back().name = a.to_string();
    }
    int rc = exit_failure;
    try {
        rc = coio::run(run_collector(&*c));
    } catch (const std::exception& e) {
        c->con.clear_status();
        std::fprintf(stderr, "coio-logcollect: %s\n", e.what());
        return exit_failure;
    }
    c->con.clear_status();
    const double secs =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - c->started).count();
    print_summary(stderr, c->sources, c->opts.listen ? &c->push : nullptr, 64, secs,
                  c->sink.name());
    if (!c->failure.empty()) {
        std::fprintf(stderr, "coio-logcollect: failed: %s\n", c->failure.c_str());
    }
    return rc;
}
