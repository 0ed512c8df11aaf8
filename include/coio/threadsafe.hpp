// coio/threadsafe.hpp - run_coroutine_threadsafe (asyncio's) and the
// concurrent_future it returns (concurrent.futures.Future).
//
//   coio::event_loop& io = ...;                       // runs on another thread
//   coio::concurrent_future<int> f = coio::run_coroutine_threadsafe(io, fetch());
//   int v = f.get();                                  // a plain thread blocks
//   int w = co_await f;                               // a task of another loop suspends
//
// run_coroutine_threadsafe may be called from any thread. It hands the task
// to `loop` through call_soon_threadsafe; the loop starts it as one of its
// tasks (create_task) and the future completes with its value or exception.
// The task is owned by that loop and runs on its thread, never on the
// caller's.
//
// The future is a shared, thread-safe handle (copies refer to one outcome):
//  - get() blocks the calling thread until the outcome is there, then
//    returns the value (copied; moved out if T cannot be copied - get such a
//    value once) or rethrows the exception. wait() and wait_for(d) block
//    without taking it. Blocking on the thread of the loop that runs the task
//    would never end: get()/wait() throw std::logic_error there instead
//    (wait_for(d) just returns false after d). On any other loop's thread
//    they block that loop: co_await instead.
//  - co_await f from a task of any loop (also the target loop) suspends that
//    task; it resumes on its own loop. Cancelling the awaiting task throws
//    cancelled_error there and does not cancel the future's task.
//  - cancel() (any thread) asks the task to stop on its loop: its current
//    await throws cancelled_error, the future then holds cancelled_error
//    (unless the task catches it and returns a value). A task cancelled
//    before it started never runs. False if the task has finished.
//  - If the loop ends run() with the task still running, the task is
//    cancelled like every other (asyncio.run does the same); if the loop is
//    destroyed before it started the task, or with the task stuck, the
//    future holds std::runtime_error saying so. Nobody waits for ever.
//
// Lifetime: the loop must exist while run_coroutine_threadsafe and cancel()
// are called on it (cancel() on a finished future touches no loop); the
// state lives as long as any future copy or the task.
#pragma once

#include <coio/detail/future_state.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <coroutine>
#include <memory>
#include <stdexcept>
#include <type_traits>
#include <utility>

namespace coio {

template <class T>
class concurrent_future {
    using state = detail::future_state<T>;

public:
    concurrent_future() noexcept = default;
    explicit concurrent_future(std::shared_ptr<state> st) noexcept : m_st(std::move(st)) {}

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_st); }
    // The task has finished (value, exception or cancelled).
    [[nodiscard]] bool done() const { return st().done(); }
    // It finished with cancelled_error.
    [[nodiscard]] bool cancelled() const { return st().done() && st().ended_cancelled(); }
    // Ask the task to stop (see above); false if it has finished.
    bool cancel() { return detail::request_cancel(m_st); }

    // Block until the task has finished.
    void wait() const { st().block(-1); }
    // Block until it has finished or `d` passed; true if it has finished.
    template <class Rep, class Period>
    bool wait_for(std::chrono::duration<Rep, Period> d) const {
        const auto ns = std::chrono::ceil<std::chrono::nanoseconds>(d).count();
        return st().block(ns < 0 ? 0 : static_cast<long long>(ns));
    }
    // Block until finished, then return the value or rethrow the exception.
    decltype(auto) get() const {
        st().block(-1);
        return value();
    }

    class awaiter {
    public:
        explicit awaiter(std::shared_ptr<state> st) noexcept : m_st(std::move(st)) {}
        awaiter(awaiter&&) noexcept = default;
        awaiter& operator=(const awaiter&) = delete;

        [[nodiscard]] bool await_ready() const { return m_st->done(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            if (!m_waiter.prepare(h)) {
                return false;
            }
            if (m_st->park_unless_done(m_waiter)) {
                return false;
            }
            m_waiter.listen();
            return true;
        }
        decltype(auto) await_resume() {
            m_waiter.finish();
            return concurrent_future(m_st).value();
        }

    private:
        std::shared_ptr<state> m_st; // declared first: outlives the waiter
        detail::remote_waiter m_waiter;
    };

    // Suspend the awaiting task (any loop) until the task has finished.
    awaiter operator co_await() const { return awaiter(m_st); }

private:
    state& st() const {
        if (!m_st) {
            throw std::logic_error("coio::concurrent_future: empty future");
        }
        return *m_st;
    }
    decltype(auto) value() const {
        result<T>& r = m_st->m_result;
        if constexpr (std::is_void_v<T>) {
            r.value();
        } else if constexpr (std::is_reference_v<T>) {
            return r.value();
        } else if constexpr (!std::is_copy_constructible_v<T>) {
            return T(std::move(r).value());
        } else {
            return T(r.value());
        }
    }

    std::shared_ptr<state> m_st;
};

// Run `t` on `loop` (from any thread) and return a future for its outcome.
// Throws whatever call_soon_threadsafe throws (std::bad_alloc).
template <class T>
concurrent_future<T> run_coroutine_threadsafe(event_loop& loop, task<T> t) {
    auto st = std::make_shared<detail::future_state<T>>(loop, std::move(t));
    loop.call_soon_threadsafe(detail::start_job<T>(st));
    return concurrent_future<T>(std::move(st));
}

} // namespace coio
