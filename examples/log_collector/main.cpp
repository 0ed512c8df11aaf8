// coio-logcollect - a streaming log collector on one coio event loop.
//
// What it shows: many long-lived connections, one task each, sharing one
// output with group commit (output_sink.hpp); line reassembly from fixed-size
// reads in bounded memory (line_assembler.hpp); acknowledgements that mean
// "written" (source_task.cpp); reconnects with backoff; syslog over TCP
// (push_server.cpp); a task_group for the tasks, an event and signal
// handlers for a clean stop.
//
// Run:  ./build/examples/log_collector/log_source --port 0 --lines 1000 &
//       ./build/examples/log_collector/coio-logcollect 127.0.0.1:PORT -o logs.txt
// and stop it with Ctrl-C: it prints a summary per source. --help has the
// delivery guarantee and the over-long-line policy; README.md in this folder
// the details.
#include "collector.hpp"
#include "memory.hpp"
#include "options.hpp"
#include "push_server.hpp"
#include "source_task.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/error.hpp>
#include <coio/signal.hpp>
#include <coio/sleep.hpp>
#include <coio/task_group.hpp>
#include <coio/task_handle.hpp>
#include <coio/timeout.hpp>

#include <sys/resource.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <optional>
#include <stdexcept>
#include <string>

namespace logcollect {

namespace {

constexpr auto shutdown_timeout = std::chrono::seconds(5);

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
        std::size_t pushing = 0;
        for (const coio::server* srv : {c->push_server, c->push_tls_server}) {
            pushing += srv != nullptr ? srv->stats().active : 0;
        }
        const std::string text = status_text(c->connected, c->sources.size(), t, r, pushing);
        if (live) {
            c->con.status(text);
        } else {
            c->con.message("stats: " + text);
        }
    }
}

// Once a second: report the push connections closed by a timeout and a
// pause at --max-connections (push_server.hpp), one message for all of
// them; give memory back to the system after a flood (memory.hpp) - when
// more than 4 MiB were freed.
coio::task<> housekeeping(collector* c) {
    memory_trimmer trimmer(std::size_t{4} << 20U);
    push_report_state reported;
    push_report_state reported_tls;
    for (;;) {
        co_await coio::sleep(std::chrono::seconds(1));
        report_push_expired(c);
        if (c->push_server != nullptr) {
            report_push_cap(c, *c->push_server, false, reported);
        }
        if (c->push_tls_server != nullptr) {
            report_push_cap(c, *c->push_tls_server, true, reported_tls);
        }
        trimmer.sample();
    }
}

// Every long-running task of the collector, as children of one task_group.
// They run until this task is cancelled: the group then cancels each child
// and waits until every one has finished (a pull source writes and
// acknowledges what it has and closes its connection first). A child that
// fails with an exception is a bug: the group cancels the others, and the
// collector stops with exit status 1.
coio::task<> run_tasks(collector* c) {
    coio::task_group group;
    for (std::size_t i = 0; i < c->sources.size(); ++i) {
        source_stats* st = &c->sources[i];
        group.create_task(pull_source(c, st, c->opts.sources[i]), st->name);
    }
    group.create_task(run_ticker(c), "ticker");
    group.create_task(housekeeping(c), "housekeeping");
    std::string error;
    try {
        co_await group.wait();
    } catch (const coio::exception_group& e) {
        error = e.what();
    }
    if (!error.empty()) {
        c->fail(error);
    }
}

// Start the --listen (or with `tls` the --listen-tls) server into `out`.
// On failure says why and returns false.
coio::task<bool> listen_push(collector* c, bool tls, std::optional<coio::server>* out) {
    std::string error;
    try {
        coio::server srv = co_await start_push_server(c, tls);
        out->emplace(std::move(srv));
    } catch (const coio::net_error& e) { // tls_error included
        error = e.what();
    } catch (const std::invalid_argument& e) {
        error = e.what();
    }
    if (!error.empty()) {
        c->con.message(std::string("cannot listen for push senders") +
                       (tls ? " over TLS: " : ": ") + error);
        co_return false;
    }
    const std::string where = (tls ? "tls " : "") + (*out)->local_address().to_string();
    c->push.name += " " + where; // the port, if 0 was given
    c->con.message("push: listening on " + where);
    co_return true;
}

// --tls-ca: the client context every pull source connects with (the
// certificate must verify against the CAs and name the source's IP address;
// --tls-cert/--tls-key, if given, are sent as the client's). On failure says
// why and returns false.
bool make_pull_tls(collector* c) {
    coio::tls_context_options o;
    o.ca_file = c->opts.tls_ca;
    o.cert_file = c->opts.tls_cert;
    o.key_file = c->opts.tls_key;
    try {
        c->pull_tls = coio::tls_context::client(std::move(o));
    } catch (const coio::net_error& e) { // tls_error
        c->con.message(std::string("cannot use --tls-ca: ") + e.what());
        return false;
    }
    return true;
}

coio::task<int> run_collector(collector* c) {
    signal_handlers signals(c);
    if (!c->opts.tls_ca.empty() && !make_pull_tls(c)) {
        co_return exit_failure;
    }
    std::optional<coio::server> push;
    std::optional<coio::server> push_tls;
    c->push.name = "push";
    if (c->opts.listen) {
        const bool ok = co_await listen_push(c, false, &push);
        if (!ok) {
            co_return exit_failure;
        }
        c->push_server = &*push;
    }
    if (c->opts.listen_tls) {
        const bool ok = co_await listen_push(c, true, &push_tls);
        if (!ok) {
            co_return exit_failure; // `push`, if any, closes as it goes
        }
        c->push_tls_server = &*push_tls;
    }

    coio::task_handle<> tasks = coio::create_task(run_tasks(c), "collector tasks");
    co_await c->stop.wait(); // a signal, or collector::fail()

    // Stop: no new push connections; end the reads (each push connection
    // writes what it received); let every source write and acknowledge what
    // it has, then close.
    for (std::optional<coio::server>* srv : {&push, &push_tls}) {
        if (*srv) {
            (*srv)->close();
            (*srv)->close_clients();
        }
    }
    tasks.cancel();
    bool timed_out = false;
    const auto give_up = std::chrono::steady_clock::now() + shutdown_timeout;
    try {
        co_await coio::timeout_at(give_up, tasks);
    } catch (const coio::cancelled_error&) {
        // how the group ends when it is cancelled
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    for (std::optional<coio::server>* srv : {&push, &push_tls}) {
        if (*srv) {
            try {
                co_await coio::timeout_at(give_up, (*srv)->wait_closed());
            } catch (const coio::timeout_error&) {
                timed_out = true;
            }
        }
    }
    if (timed_out) {
        c->con.message("some connections did not close within 5 s; exiting anyway");
    }
    c->push_server = nullptr; // the tasks that read them have ended
    c->push_tls_server = nullptr;
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
    print_summary(stderr, c->sources, push_listeners(c->opts) > 0 ? &c->push : nullptr, 64, secs,
                  c->sink.name());
    if (!c->failure.empty()) {
        std::fprintf(stderr, "coio-logcollect: failed: %s\n", c->failure.c_str());
    }
    return rc;
}
