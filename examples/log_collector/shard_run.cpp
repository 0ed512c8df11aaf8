// log_collector/shard_run.cpp - the tasks of one loop (shard_run.hpp).
#include "shard_run.hpp"

#include "memory.hpp"
#include "push_server.hpp"
#include "source_task.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/net/error.hpp>
#include <coio/sleep.hpp>
#include <coio/task_group.hpp>
#include <coio/task_handle.hpp>
#include <coio/timeout.hpp>

#include <algorithm>
#include <array>
#include <chrono>
#include <stdexcept>
#include <string>

namespace logcollect {

namespace {

constexpr auto shutdown_timeout = std::chrono::seconds(5);
// After it: how long a push connection that was reset gets to end.
constexpr auto abort_timeout = std::chrono::seconds(1);

// One loop's counters, as the ticker needs them.
struct shard_snapshot {
    totals t;
    std::size_t connected = 0; // pull sources connected
    std::size_t pushing = 0;   // push connections open
};

coio::task<shard_snapshot> snapshot(shard* sh) {
    shard_snapshot s;
    for (const source_stats* st : sh->sources) {
        add_to(s.t, *st);
    }
    add_to(s.t, sh->push);
    s.connected = sh->connected;
    for (const std::optional<coio::server>* srv : {&sh->listener, &sh->tls_listener}) {
        s.pushing += *srv ? (*srv)->stats().active : 0;
    }
    co_return s;
}

// Every loop's counters, summed: each loop reads its own (on_loop).
coio::task<shard_snapshot> snapshot_all(collector* c) {
    shard_snapshot all;
    for (std::size_t k = 0; k < c->shards.size(); ++k) {
        const shard_snapshot s = co_await on_loop(c, k, snapshot(&c->shards[k]));
        all.t.lines += s.t.lines;
        all.t.bytes += s.t.bytes;
        all.t.reconnects += s.t.reconnects;
        all.t.errors += s.t.errors;
        all.t.pieces += s.t.pieces;
        all.t.cut_lines += s.t.cut_lines;
        all.connected += s.connected;
        all.pushing += s.pushing;
    }
    co_return all;
}

// Loop 0: redraw the status line, or print a stats line now and then.
coio::task<> run_ticker(collector* c) {
    const bool live = c->con.live();
    const auto every = live ? std::chrono::milliseconds(500) : c->opts.stats_interval;
    if (every.count() == 0) {
        co_return;
    }
    rate_meter meter;
    const shard_snapshot first = co_await snapshot_all(c);
    meter.sample(first.t);
    for (;;) {
        co_await coio::sleep(every);
        const shard_snapshot s = co_await snapshot_all(c);
        const rate_meter::rates r = meter.sample(s.t);
        const std::string text = status_text(s.connected, c->sources.size(), s.t, r, s.pushing);
        if (live) {
            c->con.status(text);
        } else {
            c->con.message("stats: " + text);
        }
    }
}

// Once a second: report this loop's push connections closed by a timeout
// and a pause at its share of --max-connections (push_server.hpp), one
// message for all of them; on loop 0, give memory back to the system after
// a flood (memory.hpp; malloc_trim covers every thread's arena) - when more
// than 4 MiB were freed.
coio::task<> housekeeping(shard* sh) {
    memory_trimmer trimmer(std::size_t{4} << 20U);
    push_report_state reported;
    push_report_state reported_tls;
    for (;;) {
        co_await coio::sleep(std::chrono::seconds(1));
        report_push_expired(sh);
        if (sh->listener) {
            report_push_cap(sh, *sh->listener, false, reported);
        }
        if (sh->tls_listener) {
            report_push_cap(sh, *sh->tls_listener, true, reported_tls);
        }
        if (sh->is_writer()) {
            trimmer.sample();
        }
    }
}

// Every long-running task of this loop, as children of one task_group.
// They run until this task is cancelled: the group then cancels each child
// and waits until every one has finished (a pull source writes and
// acknowledges what it has and closes its connection first). A child that
// fails with an exception is a bug: the group cancels the others, and the
// collector stops with exit status 1.
coio::task<> run_tasks(shard* sh) {
    coio::task_group group;
    for (std::size_t i = 0; i < sh->sources.size(); ++i) {
        source_stats* st = sh->sources[i];
        group.create_task(pull_source(sh, st, sh->addresses[i], sh->tls[i]), st->name);
    }
    if (sh->is_writer()) {
        group.create_task(run_ticker(sh->c), "ticker");
    }
    group.create_task(housekeeping(sh), "housekeeping");
    std::string error;
    try {
        co_await group.wait();
    } catch (const coio::exception_group& e) {
        error = e.what();
    }
    if (!error.empty()) {
        sh->c->fail(error);
    }
}

// Start the --listen (or with `tls` the --listen-tls) server into `out`.
// On failure says why and returns false.
coio::task<bool> listen_push(shard* sh, bool tls, std::optional<coio::server>* out) {
    collector* c = sh->c;
    std::string error;
    try {
        coio::server srv = co_await start_push_server(sh, tls);
        out->emplace(std::move(srv));
    } catch (const coio::net_error& e) { // tls_error included
        error = e.what();
    } catch (const std::invalid_argument& e) {
        error = e.what();
    }
    const std::string on_loop_k =
        c->loops.size() > 1 ? " (loop " + std::to_string(sh->index) + ")" : "";
    if (!error.empty()) {
        c->con.message(std::string("cannot listen for push senders") + (tls ? " over TLS" : "") +
                       on_loop_k + ": " + error);
        co_return false;
    }
    if (sh->is_writer()) { // the others listen on the same address
        const std::string where = (tls ? "tls " : "") + (*out)->local_address().to_string();
        sh->push.name += " " + where; // the port, if 0 was given
    }
    co_return true;
}

// --tls-ca: the client context the TLS pull sources of this loop connect with
// (the certificate must verify against the CAs and name the source's IP
// address; --tls-cert/--tls-key, if given, are sent as the client's). On
// failure says why and returns false.
bool make_pull_tls(shard* sh) {
    const options& opts = sh->c->opts;
    coio::tls_context_options o;
    o.ca_file = opts.tls_ca;
    o.cert_file = opts.tls_cert;
    o.key_file = opts.tls_key;
    try {
        sh->pull_tls = coio::tls_context::client(std::move(o));
    } catch (const coio::net_error& e) { // tls_error
        sh->c->con.message(std::string("cannot use --tls-ca: ") + e.what());
        return false;
    }
    return true;
}

// Stop accepting on this loop's listeners and end every connection they
// accepted: close (what is buffered is sent) or, with `abort`, reset.
void close_listeners(shard* sh, bool abort) {
    const std::array<std::optional<coio::server>*, 2> servers{&sh->listener, &sh->tls_listener};
    for (std::optional<coio::server>* srv : servers) {
        if (*srv) {
            (*srv)->close();
            if (abort) {
                (*srv)->abort_clients();
            } else {
                (*srv)->close_clients();
            }
        }
    }
}

// Wait until every connection of this loop's listeners has ended, at most
// until `deadline`. false: some had not.
coio::task<bool> listeners_closed(shard* sh, std::chrono::steady_clock::time_point deadline) {
    const std::array<std::optional<coio::server>*, 2> servers{&sh->listener, &sh->tls_listener};
    bool closed = true;
    for (std::optional<coio::server>* srv : servers) {
        if (*srv) {
            try {
                co_await coio::timeout_at(deadline, (*srv)->wait_closed());
            } catch (const coio::timeout_error&) {
                closed = false;
            }
        }
    }
    co_return closed;
}

// The end of a loop's stop, once its listeners are closed (close_listeners)
// and its tasks have ended or are given up on: wait for the push handlers
// until `give_up`; those still running after that (stuck behind a slow
// output) have their connections reset and get abort_timeout more, so that
// none appends records after the last flush below. Then send the last
// records to the writer and close the listeners. Idempotent.
coio::task<> finish(shard* sh, std::chrono::steady_clock::time_point give_up, bool timed_out) {
    if (sh->finished) {
        co_return;
    }
    const bool closed = co_await listeners_closed(sh, give_up);
    if (timed_out || !closed) {
        sh->c->con.message("some connections did not close within 5 s; exiting anyway");
    }
    if (!closed) {
        close_listeners(sh, true);
        const bool ended = co_await listeners_closed(sh, coio::now() + abort_timeout);
        if (!ended) {
            sh->c->con.message("some push connections did not end after a reset either; what "
                               "they still receive is lost");
        }
    }
    // Push records, "aborted" records: to the writer (loop 0 writes its own
    // after every loop has stopped).
    bool stopped = false;
    (void)co_await sh->flush_through(sh->end_mark(), &stopped);
    sh->listener.reset();
    sh->tls_listener.reset();
    sh->finished = true;
}

} // namespace

coio::task<bool> setup_shard(shard* sh) {
    collector* c = sh->c;
    const bool tls_sources = std::find(sh->tls.begin(), sh->tls.end(), true) != sh->tls.end();
    if (tls_sources && !make_pull_tls(sh)) {
        co_return false;
    }
    sh->push.name = "push";
    if (c->opts.listen) {
        const bool ok = co_await listen_push(sh, false, &sh->listener);
        if (!ok) {
            co_return false;
        }
        if (sh->is_writer()) {
            c->listen_port = sh->listener->local_address().port();
        }
    }
    if (c->opts.listen_tls) {
        const bool ok = co_await listen_push(sh, true, &sh->tls_listener);
        if (!ok) {
            sh->listener.reset(); // closes as it goes
            co_return false;
        }
        if (sh->is_writer()) {
            c->listen_tls_port = sh->tls_listener->local_address().port();
        }
    }
    co_return true;
}

void say_listening(collector* c) {
    const shard& sh = c->shards[0];
    for (const std::optional<coio::server>* srv : {&sh.listener, &sh.tls_listener}) {
        if (*srv) {
            const std::string where =
                (srv == &sh.tls_listener ? "tls " : "") + (*srv)->local_address().to_string();
            c->con.message("push: listening on " + where +
                           (c->loops.size() > 1
                                ? " (" + std::to_string(c->loops.size()) + " loops, SO_REUSEPORT)"
                                : ""));
        }
    }
}

coio::task<> run_shard(shard* sh) {
    coio::task_handle<> tasks = coio::create_task(run_tasks(sh), "collector tasks");
    coio::event never; // run until cancelled: loop 0's stop
    try {
        co_await never.wait();
    } catch (const coio::cancelled_error&) {
        // the stop
    }
    // Stop: no new push connections; end the reads (each push connection
    // writes what it received); let every source write and acknowledge what
    // it has, then close.
    sh->stopping = true;
    close_listeners(sh, false);
    tasks.cancel();
    const auto give_up = coio::now() + shutdown_timeout;
    bool timed_out = false;
    try {
        co_await coio::timeout_at(give_up, tasks);
    } catch (const coio::cancelled_error&) {
        // how the group ends when it is cancelled
    } catch (const coio::timeout_error&) {
        timed_out = true;
    }
    co_await finish(sh, give_up, timed_out);
}

coio::task<> finish_shard(shard* sh) {
    sh->stopping = true;
    close_listeners(sh, false); // idempotent: run_shard may have done it
    co_await finish(sh, coio::now() + shutdown_timeout, false);
}

} // namespace logcollect
