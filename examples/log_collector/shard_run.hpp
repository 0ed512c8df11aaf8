// log_collector/shard_run.hpp - what runs on each loop: its listeners, its
// pull sources, its housekeeping, and its part of the clean stop.
//
// main.cpp's run_collector (loop 0's main task) calls these on each shard's
// own loop (on_loop): a server, a TLS context, a socket is made, used and
// closed on the loop of its shard.
#pragma once

#include "collector.hpp"

#include <coio/task.hpp>

#include <cstddef>
#include <utility>

namespace logcollect {

// `t` to be awaited from loop 0: run on shard k's loop (loop_ref::spawn:
// the await resumes on loop 0), or as it is for loop 0 itself.
template <class T>
coio::task<T> on_loop(collector* c, std::size_t k, coio::task<T> t) {
    if (k == 0) {
        return t;
    }
    return c->loops[k].spawn(std::move(t));
}

// On sh's loop: --tls-ca's client context, the --listen and --listen-tls
// servers (sh->listener, sh->tls_listener). Loop 0 first: loops other than 0
// bind the ports it got (c->listen_port, c->listen_tls_port), which this
// sets for shard 0. On failure says why, closes what it opened and returns
// false.
coio::task<bool> setup_shard(shard* sh);

// On sh's loop: run its pull sources and housekeeping (and, on loop 0, the
// ticker: stats summed over the loops) until cancelled - the clean stop:
// no new push connections, end the reads, let every source write and
// acknowledge what it has and close (bounded by 5 s; a push connection
// still open then is reset), send the last records to the writer, close the
// listeners. Does not throw cancelled_error: it
// returns when the stop is done. A task that fails with an exception (a
// bug) stops the collector (collector::fail) with exit status 1.
coio::task<> run_shard(shard* sh);

// Loop 0, once every loop has set up: "push: listening on ADDRESS" for each
// listener (senders may connect from then on: every loop accepts).
void say_listening(collector* c);

// On sh's loop: the end of its stop, also for a loop whose run_shard never
// ran (the stop came before the loop picked it up) or after a failed setup
// elsewhere: no new push connections, end the push connections (bounded by
// 5 s, then reset), send the last records to the writer, close the
// listeners. Idempotent: does nothing after run_shard or itself finished.
coio::task<> finish_shard(shard* sh);

} // namespace logcollect
