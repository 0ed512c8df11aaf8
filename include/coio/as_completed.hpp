// coio/as_completed.hpp - as_completed (asyncio.as_completed): tasks in the
// order they finish.
//
//   coio::as_completed done(std::move(handles));        // or (handles, 10s)
//   for (;;) {
//       std::optional<coio::task_handle<int>> h = co_await done.next();
//       if (!h) break;                                   // every task was handed out
//       int v = co_await *h;                             // finished: returns at once
//   }
//
// Every task is handed out exactly once by next(), in the order the tasks
// finish (tasks already finished when the object is made come first, in
// input order). next() suspends until one finishes and returns its handle,
// or std::nullopt once all were handed out. It never cancels a task and
// retrieves nothing: await the handle to get the value or the exception.
//
// With a timeout (counted from construction, as asyncio counts from the
// call), next() hands out the tasks that finished before the deadline, then
// throws timeout_error on every further call while tasks remain; they keep
// running (cancel them through tasks() if they are no longer wanted).
// Cancelling the task in next() throws cancelled_error and loses nothing:
// a task that finished meanwhile is handed out by the next call.
//
// Built from a vector of task<T> instead, it starts each as a task on the
// running loop first. The object watches its tasks from construction; it is
// movable (also while next() is awaited), must outlive a next() being awaited, and only one next()
// may be awaited at a time (std::logic_error otherwise). Loop thread only.
#pragma once

#include <coio/detail/timeout_state.hpp>
#include <coio/detail/wait_state.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>
#include <coio/task_handle.hpp>

#include <chrono>
#include <cstddef>
#include <memory>
#include <optional>
#include <utility>
#include <vector>

namespace coio {

template <class T>
class as_completed {
public:
    explicit as_completed(std::vector<task_handle<T>> tasks)
        : as_completed(std::move(tasks), detail::wait_clock::time_point::max()) {}
    template <class Rep, class Period>
    as_completed(std::vector<task_handle<T>> tasks, std::chrono::duration<Rep, Period> timeout)
        : as_completed(std::move(tasks), detail::deadline_after(timeout)) {}
    // Starts each task on the running loop (std::logic_error if none).
    explicit as_completed(std::vector<task<T>> tasks) : as_completed(start_all(std::move(tasks))) {}
    template <class Rep, class Period>
    as_completed(std::vector<task<T>> tasks, std::chrono::duration<Rep, Period> timeout)
        : as_completed(start_all(std::move(tasks)), timeout) {}

    class next_awaiter {
    public:
        next_awaiter(detail::completion_queue& q, const task_handle<T>* tasks) noexcept
            : m_queue(&q), m_tasks(tasks) {}
        [[nodiscard]] bool await_ready() const noexcept { return m_queue->ready(); }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_queue->suspend(h, detail::loop_of(h), detail::slot_of(h));
        }
        std::optional<task_handle<T>> await_resume() {
            const std::size_t i = m_queue->take();
            if (i == detail::completion_queue::no_task) {
                return std::nullopt;
            }
            return m_tasks[i];
        }

    private:
        detail::completion_queue* m_queue; // both survive a move of the as_completed
        const task_handle<T>* m_tasks;
    };

    // The next task to finish (see above).
    [[nodiscard]] next_awaiter next() noexcept { return next_awaiter(*m_queue, m_tasks.data()); }
    // Tasks next() has not handed out yet.
    [[nodiscard]] std::size_t remaining() const noexcept { return m_queue->remaining(); }
    // Every task, in input order.
    [[nodiscard]] const std::vector<task_handle<T>>& tasks() const noexcept { return m_tasks; }

private:
    as_completed(std::vector<task_handle<T>> tasks, detail::wait_clock::time_point deadline)
        : m_tasks(std::move(tasks)),
          m_queue(std::make_unique<detail::completion_queue>(detail::roots_of(m_tasks), deadline)) {
    }

    static std::vector<task_handle<T>> start_all(std::vector<task<T>> tasks) {
        std::vector<task_handle<T>> handles;
        handles.reserve(tasks.size());
        for (task<T>& t : tasks) {
            handles.push_back(create_task(std::move(t)));
        }
        return handles;
    }

    std::vector<task_handle<T>> m_tasks;
    std::unique_ptr<detail::completion_queue> m_queue;
};

template <class T>
as_completed(std::vector<task_handle<T>>) -> as_completed<T>;
template <class T, class Rep, class Period>
as_completed(std::vector<task_handle<T>>, std::chrono::duration<Rep, Period>) -> as_completed<T>;
template <class T>
as_completed(std::vector<task<T>>) -> as_completed<T>;
template <class T, class Rep, class Period>
as_completed(std::vector<task<T>>, std::chrono::duration<Rep, Period>) -> as_completed<T>;

} // namespace coio
