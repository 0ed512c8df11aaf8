// log_collector/shard.cpp - one loop's records on their way to the output
// (collector.hpp).
//
// Loop 0 (the writer) appends to the sink's buffer and writes with group
// commit (output_sink.hpp). Another loop appends to its outbox and hands it
// to loop 0 as one batch, with loop_ref::spawn of write_batch: the batch is
// appended to the sink's buffer there and written with loop 0's next group
// commit, and the spawn resumes on this loop with the verdict. While a batch
// is on its way the loop's sources wait for it (they do not read more), so
// memory stays bounded as with one loop: each source has at most its last
// read's records outstanding; and a slow output slows every loop's sources,
// since loop 0 answers a batch only after write(2) returned.
#include "collector.hpp"

#include <coio/cancel.hpp>
#include <coio/sleep.hpp>
#include <coio/task_handle.hpp>

#include <exception>
#include <mutex>
#include <new>
#include <stdexcept>
#include <utility>

namespace logcollect {

namespace {

// On loop 0: append a batch from another loop and write it with the next
// group commit. Not cancelled (ship() is not), but a cancel is ignored
// anyway: a batch is written or the output failed, nothing in between.
coio::task<bool> write_batch(collector* c, std::string batch) {
    if (c->sink.failed()) {
        co_return false;
    }
    c->sink.buffer() += batch;
    const std::uint64_t mark = c->sink.end_mark();
    try {
        if (!c->sink.wants_flush()) {
            co_await coio::yield_now(); // let the others of this iteration append
        }
    } catch (const coio::cancelled_error&) {
        // written below all the same
    }
    co_return c->flush_through(mark);
}

coio::task<> set_stop(collector* c) {
    c->stop.set();
    co_return;
}

// From another loop: set loop 0's stop event there. A hand-off after the
// loops have ended is refused (then nothing is left to stop: main reads
// the failure for the exit status); so is one that cannot be allocated.
coio::task<> stop_writer(collector* c) {
    try {
        co_await c->loops[0].spawn(set_stop(c));
    } catch (const std::runtime_error&) {
        // the loops have ended
    } catch (const std::bad_alloc&) {
        // the failure is recorded all the same
    }
}

} // namespace

void collector::fail(const std::string& what) {
    {
        const std::lock_guard<std::mutex> lock(m_failure_mutex);
        if (!m_failure.empty()) {
            return; // the first one stopped the collector
        }
        m_failure = what;
    }
    con.message(what);
    if (loops.size() > 1 && !loops[0].is_current()) {
        (void)coio::create_task(stop_writer(this), "stop"); // detached
        return;
    }
    stop.set();
}

std::string collector::failure() const {
    const std::lock_guard<std::mutex> lock(m_failure_mutex);
    return m_failure;
}

shard::shard(collector* owner, std::size_t i)
    : c(owner), index(i), fmt(owner->opts.format, &owner->seq) {}

void shard::emit(std::string_view source, std::string_view text, record_kind kind,
                 std::uint32_t part, std::string_view framing) {
    std::string& out = is_writer() ? c->sink.buffer() : m_out;
    fmt.append(out, record_meta{source, kind, part, framing}, text);
}

std::uint64_t shard::end_mark() const noexcept {
    return is_writer() ? c->sink.end_mark() : m_base + m_out.size();
}

bool shard::wants_flush() const noexcept {
    return is_writer() ? c->sink.wants_flush() : m_out.size() >= output_sink::flush_threshold;
}

coio::task<> shard::ship() {
    const std::uint64_t end = m_base + m_out.size();
    std::string batch = std::exchange(m_out, std::string());
    m_base = end;
    // However this ends (a throw included: bad_alloc in fail()), the batch
    // is answered - written only if loop 0 said so - and every waiter is
    // woken: m_shipping never stays set (the stop would wait for ever).
    struct answer {
        shard* sh;
        std::uint64_t end;
        bool ok;
        ~answer() {
            sh->m_done = end;
            sh->m_failed = sh->m_failed || !ok;
            sh->m_shipping = false;
            sh->m_shipped.set(); // wakes every waiter
            sh->m_shipped.clear();
        }
    };
    answer answered{this, end, false};
    std::string error;
    try {
        answered.ok = co_await c->loops[0].spawn(write_batch(c, std::move(batch)));
    } catch (const std::exception& e) {
        // bad_alloc, or the loops ended under us: nothing is acknowledged.
        error = e.what();
    }
    if (!error.empty()) {
        c->fail("handing records to the writer loop: " + error);
    }
}

coio::task<bool> shard::flush_through(std::uint64_t mark, bool* stopped) {
    if (is_writer()) {
        co_return c->flush_through(mark);
    }
    while (m_done < mark && !m_failed) {
        if (!m_shipping) { // else the batch on its way has `mark`, or the next one will
            m_shipping = true;
            (void)coio::create_task(ship(), "outbox"); // detached: a stop does not cancel it
        }
        try {
            co_await m_shipped.wait();
        } catch (const coio::cancelled_error&) {
            *stopped = true; // the caller stops after this flush
        }
    }
    co_return !m_failed;
}

} // namespace logcollect
