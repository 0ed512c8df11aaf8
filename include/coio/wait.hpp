// coio/wait.hpp - wait (asyncio.wait): split tasks into done and pending.
//
//   auto [done, pending] = co_await coio::wait(std::move(handles),
//   coio::return_when::first_completed); auto r = co_await coio::wait(std::move(handles), 5s);   //
//   ALL_COMPLETED, at most 5 s
//
// Waits until the condition holds - some task finished (first_completed),
// some task raised an exception other than cancelled_error or all finished
// (first_exception), every task finished (all_completed, the default) - or
// the timeout passed, then returns every task in `done` or `pending`, each
// in input order. A task counts as done once it has finished in any way
// (value, exception, cancelled).
//
// Unlike race and gather, wait only watches: nothing is cancelled - not the
// tasks when it returns, not when the timeout passes (no timeout_error: the
// pending set says what did not finish), not when the waiting task is
// cancelled (then cancelled_error is thrown and the tasks run on). Exceptions
// are not retrieved: read them from the handles (result(), exception()),
// otherwise the loop reports them as usual.
//
// Suspends unless the condition already holds (then no cancel is looked at).
// The timeout counts from the await; time_point::max() or a huge duration
// means none. Throws std::invalid_argument for an empty vector (asyncio
// raises ValueError), std::logic_error for an empty handle.
#pragma once

#include <coio/detail/timeout_state.hpp>
#include <coio/detail/wait_state.hpp>
#include <coio/task.hpp>
#include <coio/task_handle.hpp>

#include <chrono>
#include <utility>
#include <vector>

namespace coio {

// What wait returns: every task, in input order, in one of the two.
template <class T>
struct wait_result {
    std::vector<task_handle<T>> done;
    std::vector<task_handle<T>> pending;
};

namespace detail {

template <class T>
class wait_awaiter {
public:
    wait_awaiter(std::vector<task_handle<T>> tasks, return_when when,
                 wait_clock::time_point deadline)
        : m_tasks(std::move(tasks)), m_core(roots_of(m_tasks), when, deadline) {}

    [[nodiscard]] bool await_ready() const noexcept { return m_core.ready(); }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return m_core.suspend(h, loop_of(h), slot_of(h));
    }
    wait_result<T> await_resume() {
        m_core.resume();
        wait_result<T> r;
        for (task_handle<T>& h : m_tasks) {
            (h.done() ? r.done : r.pending).push_back(std::move(h));
        }
        return r;
    }

private:
    std::vector<task_handle<T>> m_tasks;
    wait_core m_core;
};

} // namespace detail

// Wait for `tasks` until `when` holds (asyncio.wait without a timeout).
template <class T>
task<wait_result<T>> wait(std::vector<task_handle<T>> tasks,
                          return_when when = return_when::all_completed) {
    co_return co_await detail::wait_awaiter<T>(std::move(tasks), when,
                                               detail::wait_clock::time_point::max());
}

// The same, returning after `timeout` at the latest.
template <class T, class Rep, class Period>
task<wait_result<T>> wait(std::vector<task_handle<T>> tasks,
                          std::chrono::duration<Rep, Period> timeout,
                          return_when when = return_when::all_completed) {
    const auto deadline = detail::deadline_after(timeout);
    co_return co_await detail::wait_awaiter<T>(std::move(tasks), when, deadline);
}

} // namespace coio
