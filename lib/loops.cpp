// lib/loops.cpp - run_loops and loop_ref (include/coio/loops.hpp).
//
// Each loop lives in two phases on its thread. Phase 1 runs the loop's main
// task and then waits until every loop's main task has finished (so a loop
// whose main task ended early goes on serving hand-offs, its own tasks
// running as well); then what is left on the loop is cancelled and drained
// (run_until_complete).
// Phase 2 starts when the loop's phase 1 is over and lasts until every loop's
// phase 1 is over: the loop runs a task that waits for that, so it keeps
// serving work other loops still hand to it. When the last phase 1 ends the
// group closes (under the group's mutex, which hand-offs take too): later
// hand-offs throw, and every hand-off made before is in its loop's queue
// ahead of the wake-up that ends phase 2, so it is run (and cancelled with
// the rest) before that loop stops. The loops are destroyed after every
// thread has finished phase 2.
#include "exception_text.hpp"
#include "sys/cpu.hpp"

#include <coio/detail/await_printer.hpp>
#include <coio/detail/remote_waiter.hpp>
#include <coio/loops.hpp>

#include <barrier>
#include <cerrno>
#include <mutex>
#include <optional>
#include <string>
#include <system_error>
#include <thread>

namespace coio {
namespace detail {

namespace {

// What dump_tasks prints for a loop's wait for the others (lib/introspect.cpp).
void latch_phrase(const void* /*self*/, await_printer& out) {
    out.text("run_loops: waiting for the other loops");
}

} // namespace

class loop_group {
public:
    explicit loop_group(std::size_t n)
        : m_loops(n, nullptr), m_mains(n),
          m_main_over(n, false), m_mains_running{n, false, {}}, m_open{n, false, {}},
          m_started(static_cast<std::ptrdiff_t>(n)), m_ended(static_cast<std::ptrdiff_t>(n)) {}

    loop_ref ref(std::size_t i) { return loop_ref(*m_loops[i], this, i); }
    [[nodiscard]] std::size_t size() const noexcept { return m_loops.size(); }

    // Record a failure of loop i (the first one wins) and cancel the other
    // main tasks. A cancelled_error after a failure is the cancel we sent.
    void fail(std::size_t i, std::exception_ptr e) {
        std::vector<concurrent_future<void>> others;
        {
            std::lock_guard lock(m_mutex);
            if (m_failed) {
                return;
            }
            m_failed = true;
            m_error = std::move(e);
            m_error_index = i;
            others = m_mains;
        }
        for (std::size_t j = 0; j < others.size(); ++j) {
            if (j != i && others[j].valid()) {
                others[j].cancel();
            }
        }
    }
    void main_ended(std::size_t i, std::exception_ptr e) {
        if (is_cancelled(e)) {
            std::lock_guard lock(m_mutex);
            if (m_failed) {
                return;
            }
        }
        fail(i, std::move(e));
    }
    void set_main(std::size_t i, const concurrent_future<void>& f) {
        bool failed = false;
        {
            std::lock_guard lock(m_mutex);
            m_mains[i] = f;
            failed = m_failed;
        }
        if (failed) {
            concurrent_future<void>(f).cancel();
        }
    }

    // The start barrier: every loop exists (or one failed to start) before
    // any main task runs. False if some loop could not start.
    bool started(std::size_t i, event_loop* loop) {
        {
            std::lock_guard lock(m_mutex);
            m_loops[i] = loop;
            if (loop == nullptr) {
                m_start_failed = true;
            }
        }
        m_started.arrive_and_wait();
        std::lock_guard lock(m_mutex);
        return !m_start_failed;
    }
    // A thread that could not be created takes no part.
    void drop(std::size_t i, std::exception_ptr e) {
        {
            std::lock_guard lock(m_mutex);
            m_start_failed = true;
        }
        fail(i, std::move(e));
        m_started.arrive_and_drop();
        m_ended.arrive_and_drop();
        main_over(i);
        phase1_over();
    }
    void ended() { m_ended.arrive_and_wait(); }

    // A count down to zero that loops' tasks wait for (guarded by m_mutex).
    struct latch {
        std::size_t m_count;
        bool m_done = false;
        remote_waiter_list m_waiters;
    };
    // Count `l` down; the last one wakes its waiters.
    void count_down(latch& l) {
        remote_waiter* woken = nullptr;
        {
            std::lock_guard lock(m_mutex);
            if (--l.m_count == 0) {
                l.m_done = true;
                woken = l.m_waiters.take_all();
            }
        }
        while (woken != nullptr) {
            remote_waiter* next = remote_waiter_list::next_taken(*woken);
            wake_remote(*woken);
            woken = next;
        }
    }
    // Loop i's main task has finished (or never ran); once per loop.
    void main_over(std::size_t i) {
        {
            std::lock_guard lock(m_mutex);
            if (m_main_over[i]) {
                return;
            }
            m_main_over[i] = true;
        }
        count_down(m_mains_running);
    }
    // Loop i's phase 1 is over; the last one closes the group.
    void phase1_over() { count_down(m_open); }

    // Suspends until the latch is done.
    struct latch_awaiter {
        loop_group* m_group;
        latch* m_latch;
        remote_waiter m_waiter;
        [[nodiscard]] bool await_ready() const {
            std::lock_guard lock(m_group->m_mutex);
            return m_latch->m_done;
        }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            if (!m_waiter.prepare(h)) {
                return false;
            }
            {
                std::lock_guard lock(m_group->m_mutex);
                if (m_latch->m_done) {
                    return false;
                }
                m_waiter.park(m_group->m_mutex, m_latch->m_waiters);
            }
            m_waiter.listen(remote_waiter::hook_for<&latch_phrase>());
            return true;
        }
        void await_resume() { m_waiter.finish(); }
    };
    latch_awaiter mains_done() { return latch_awaiter{this, &m_mains_running, {}}; }
    latch_awaiter closed() { return latch_awaiter{this, &m_open, {}}; }

    void post(event_loop& loop, std::size_t index, std::function<void()> job) {
        std::lock_guard lock(m_mutex);
        if (m_open.m_done) {
            throw std::runtime_error("coio::loop_ref: loop " + std::to_string(index) +
                                     " has ended (run_loops is shutting down)");
        }
        loop.call_soon_threadsafe(std::move(job));
    }

    void rethrow() {
        if (m_error) {
            throw loop_error(m_error_index, m_error,
                             "coio::run_loops: loop " + std::to_string(m_error_index) + ": " +
                                 describe_exception(m_error));
        }
    }

private:
    std::mutex m_mutex;
    std::vector<event_loop*> m_loops; // set before the start barrier
    std::vector<concurrent_future<void>> m_mains;
    std::vector<bool> m_main_over; // main_over(i) was called
    latch m_mains_running;         // main tasks not finished
    latch m_open;                  // loops whose phase 1 is not over: closed when done
    bool m_start_failed = false;   // a loop (or its thread) could not start
    bool m_failed = false;         // m_error is set
    std::exception_ptr m_error;    // the first failure
    std::size_t m_error_index = 0; // its loop
    std::barrier<> m_started;
    std::barrier<> m_ended;
};

namespace {

thread_local loop_group* t_group = nullptr;
thread_local std::size_t t_index = 0;

// The loop's main task, then the wait for every other main task: the loop
// keeps running (its leftover tasks too) while any main task runs.
task<> phase1(loop_group* g, std::size_t i, concurrent_future<void> main) {
    try {
        co_await main;
    } catch (...) {
        g->main_ended(i, std::current_exception());
    }
    g->main_over(i);
    co_await g->mains_done();
}

task<> phase2(loop_group* g) {
    co_await g->closed();
}

void pin_to(std::size_t i) {
    const std::vector<int> cpus = sys::allowed_cpus();
    if (int r = sys::set_thread_cpus({cpus[i % cpus.size()]}); r < 0) {
        throw std::system_error(-r, std::generic_category(),
                                "coio::run_loops: sched_setaffinity (pin loop " +
                                    std::to_string(i) + ")");
    }
}

void loop_thread(loop_group& g, std::size_t i, task<> main, const run_loops_options& opts) {
    std::optional<event_loop> loop;
    try {
        if (opts.pin) {
            pin_to(i);
        }
        loop.emplace();
        loop->set_busy_poll(opts.busy_poll);
    } catch (...) {
        g.fail(i, std::current_exception());
    }
    if (g.started(i, loop ? &*loop : nullptr)) {
        t_group = &g;
        t_index = i;
        try {
            concurrent_future<void> f = run_coroutine_threadsafe(*loop, std::move(main));
            g.set_main(i, f);
            loop->run_until_complete(phase1(&g, i, f));
        } catch (...) {
            g.fail(i, std::current_exception());
        }
        g.main_over(i); // if phase1 did not get there
        g.phase1_over();
        try {
            loop->run_until_complete(phase2(&g));
        } catch (...) {
            g.fail(i, std::current_exception());
        }
        t_group = nullptr;
    } else {
        g.main_over(i);
        g.phase1_over();
    }
    g.ended();
}

// Restores the calling thread's CPU set (loop 0 runs on it) at the end.
class affinity_guard {
public:
    explicit affinity_guard(bool active) {
        if (active) {
            m_saved = sys::allowed_cpus();
        }
    }
    affinity_guard(const affinity_guard&) = delete;
    affinity_guard& operator=(const affinity_guard&) = delete;
    ~affinity_guard() {
        if (!m_saved.empty()) {
            (void)sys::set_thread_cpus(m_saved);
        }
    }

private:
    std::vector<int> m_saved;
};

} // namespace

void run_group(std::vector<task<>> mains, run_loops_options opts) {
    if (event_loop::current() != nullptr) {
        throw std::logic_error("coio::run_loops: called on a thread that runs a loop");
    }
    const std::size_t n = mains.size();
    if (n == 0) {
        return;
    }
    loop_group g(n);
    std::vector<std::thread> threads;
    threads.reserve(n - 1);
    for (std::size_t i = 1; i < n; ++i) {
        try {
            threads.emplace_back(loop_thread, std::ref(g), i, std::move(mains[i]), opts);
        } catch (...) {
            g.drop(i, std::current_exception());
        }
    }
    {
        affinity_guard restore(opts.pin);
        loop_thread(g, 0, std::move(mains[0]), opts);
    }
    for (std::thread& t : threads) {
        t.join();
    }
    g.rethrow();
}

} // namespace detail

std::size_t available_cores() {
    const std::size_t n = sys::allowed_cpus().size();
    if (n > 0) {
        return n;
    }
    const unsigned hw = std::thread::hardware_concurrency();
    return hw > 0 ? hw : 1;
}

loop_ref loop_ref::running() {
    event_loop& loop = event_loop::running();
    detail::loop_group* g = detail::t_group;
    if (g != nullptr) {
        return g->ref(detail::t_index);
    }
    return loop_ref(loop);
}

std::vector<loop_ref> loop_ref::all() {
    std::vector<loop_ref> out;
    detail::loop_group* g = detail::t_group;
    if (g == nullptr || event_loop::current() == nullptr) {
        out.push_back(running());
        return out;
    }
    for (std::size_t i = 0; i < g->size(); ++i) {
        out.push_back(g->ref(i));
    }
    return out;
}

event_loop& loop_ref::loop() const {
    if (m_loop == nullptr) {
        throw std::logic_error("coio::loop_ref: empty (default-constructed) reference");
    }
    return *m_loop;
}

void loop_ref::post(std::function<void()> job) const {
    if (m_group != nullptr) {
        m_group->post(loop(), m_index, std::move(job));
    } else {
        loop().call_soon_threadsafe(std::move(job));
    }
}

} // namespace coio
