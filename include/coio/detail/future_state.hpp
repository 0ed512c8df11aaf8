// coio/detail/future_state.hpp - the state a concurrent_future shares with
// the task that fulfils it (run_coroutine_threadsafe).
//
// Shared by std::shared_ptr (atomic counts: any thread may hold the future).
// The outcome is written on the target loop's thread before complete(),
// which marks the state done under m_mutex, wakes blocked threads and hands
// every parked task (remote_waiter.hpp) its wake-up. Readers look at the
// outcome only after seeing m_done under the mutex (or being woken, which
// happens after), so it is never read while written.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/remote_waiter.hpp>
#include <coio/detail/root.hpp>
#include <coio/result.hpp>
#include <coio/task.hpp>

#include <atomic>
#include <condition_variable>
#include <exception>
#include <memory>
#include <mutex>
#include <type_traits>
#include <utility>

namespace coio {
class event_loop;
}

namespace coio::detail {

class future_state_base {
public:
    future_state_base(const future_state_base&) = delete;
    future_state_base& operator=(const future_state_base&) = delete;

    // Thread-safe.
    [[nodiscard]] bool done() const;
    // Block until done; false if `timeout_ns` passed first (-1: no limit).
    // Without a limit, throws std::logic_error when called on the target
    // loop's own thread before the task finished (it could never finish).
    bool block(long long timeout_ns);
    // Mark done and wake every waiter (the outcome is stored). Any thread.
    void complete() noexcept;
    // The outcome is an exception, cancelled_error: only once done.
    [[nodiscard]] virtual bool ended_cancelled() const noexcept = 0;
    // Store `e` as the outcome if none is stored (abandon).
    virtual void set_error(std::exception_ptr e) noexcept = 0;

    // await helpers: true if done (do not suspend); else park `w`.
    bool park_unless_done(remote_waiter& w);

    // Loop thread only: the running task's root, while it runs.
    root_base* m_root = nullptr;
    event_loop* m_loop;
    std::atomic<bool> m_cancel_requested{false};
    bool m_started = false; // the target loop has taken the job (its thread only)

protected:
    explicit future_state_base(event_loop& loop) noexcept : m_loop(&loop) {}
    virtual ~future_state_base() = default;

private:
    friend bool request_cancel(const std::shared_ptr<future_state_base>& st);

    mutable std::mutex m_mutex;
    std::condition_variable m_cv;
    remote_waiter_list m_waiters; // guarded
    bool m_done = false;          // guarded
};

template <class T>
class future_state final : public future_state_base {
public:
    future_state(event_loop& loop, task<T> t) : future_state_base(loop), m_task(std::move(t)) {}

    [[nodiscard]] bool ended_cancelled() const noexcept override {
        return is_cancelled(m_result.exception());
    }

    void set_error(std::exception_ptr e) noexcept override {
        if (m_result.empty()) {
            m_result.set_exception(std::move(e));
        }
    }

    task<T> m_task;     // until the target loop starts it
    result<T> m_result; // written once, before complete()
};

// Clears the root pointer when the task's body ends; if the frame is
// destroyed unfinished (its loop is torn down with it stuck), completes the
// future with an error so that nobody waits for ever.
class future_guard {
public:
    explicit future_guard(future_state_base* st) noexcept : m_st(st) {}
    future_guard(const future_guard&) = delete;
    future_guard& operator=(const future_guard&) = delete;
    ~future_guard();
    void completed() noexcept { m_completed = true; }

private:
    future_state_base* m_st;
    bool m_completed = false;
};

// Stores an error and completes: the job was dropped unstarted or the task's
// frame was destroyed unfinished.
void abandon(future_state_base& st, const char* why) noexcept;

// concurrent_future::cancel (thread-safe): false if the task has finished.
bool request_cancel(const std::shared_ptr<future_state_base>& st);

// The task run on the target loop: awaits the user's task, stores the
// outcome, completes the future.
template <class T>
task<> fulfil(task<T> t, std::shared_ptr<future_state<T>> st) {
    future_guard guard(st.get());
    if (st->m_cancel_requested.load(std::memory_order_acquire)) {
        st->m_result.set_exception(std::make_exception_ptr(cancelled_error{}));
    } else {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(t);
                st->m_result.set_value();
            } else {
                st->m_result.set_value(co_await std::move(t));
            }
        } catch (...) {
            st->m_result.set_exception(std::current_exception());
        }
    }
    guard.completed();
    st->complete();
}

// What call_soon_threadsafe runs on the target loop: start the task. If the
// loop drops it unrun (destroyed with it queued), the future completes with
// an error.
void start_fulfil(future_state_base& st, task<> job);

template <class T>
struct start_job {
    std::shared_ptr<future_state<T>> m_st;

    start_job(const start_job&) = default; // std::function wants a copyable callable
    start_job(start_job&&) noexcept = default;
    explicit start_job(std::shared_ptr<future_state<T>> st) noexcept : m_st(std::move(st)) {}
    start_job& operator=(const start_job&) = delete;
    ~start_job() {
        if (m_st && !m_st->m_started) {
            abandon(*m_st, "coio::run_coroutine_threadsafe: the loop was destroyed before the "
                           "coroutine started");
        }
    }
    void operator()() {
        m_st->m_started = true;
        start_fulfil(*m_st, fulfil(std::move(m_st->m_task), m_st));
    }
};

} // namespace coio::detail
