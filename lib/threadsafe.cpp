// lib/threadsafe.cpp - run_coroutine_threadsafe's shared state
// (detail/future_state.hpp).
#include <coio/detail/future_state.hpp>
#include <coio/event_loop.hpp>

#include <chrono>
#include <stdexcept>

namespace coio::detail {

bool future_state_base::done() const {
    std::lock_guard lock(m_mutex);
    return m_done;
}

bool future_state_base::block(long long timeout_ns) {
    std::unique_lock lock(m_mutex);
    if (m_done) {
        return true;
    }
    if (timeout_ns < 0 && event_loop::current() == m_loop) {
        throw std::logic_error("coio::concurrent_future: waiting on the loop that runs the task "
                               "would block it for ever (co_await the future instead)");
    }
    if (timeout_ns < 0) {
        m_cv.wait(lock, [this] { return m_done; });
        return true;
    }
    return m_cv.wait_for(lock, std::chrono::nanoseconds(timeout_ns), [this] { return m_done; });
}

bool future_state_base::park_unless_done(remote_waiter& w) {
    std::lock_guard lock(m_mutex);
    if (m_done) {
        return true;
    }
    w.park(m_mutex, m_waiters);
    return false;
}

void future_state_base::complete() noexcept {
    remote_waiter* woken = nullptr;
    {
        std::lock_guard lock(m_mutex);
        m_done = true;
        woken = m_waiters.take_all();
    }
    m_cv.notify_all();
    while (woken != nullptr) {
        remote_waiter* next = remote_waiter_list::next_taken(*woken);
        wake_remote(*woken); // it may be gone once woken
        woken = next;
    }
}

bool request_cancel(const std::shared_ptr<future_state_base>& st) {
    {
        std::lock_guard lock(st->m_mutex);
        if (st->m_done) {
            return false;
        }
    }
    st->m_cancel_requested.store(true, std::memory_order_release);
    st->m_loop->call_soon_threadsafe([st] {
        if (st->m_root != nullptr) {
            st->m_root->m_own_slot.request();
        }
    });
    return true;
}

void abandon(future_state_base& st, const char* why) noexcept {
    st.set_error(std::make_exception_ptr(std::runtime_error(why)));
    st.complete();
}

future_guard::~future_guard() {
    m_st->m_root = nullptr;
    if (!m_completed) {
        abandon(*m_st, "coio::run_coroutine_threadsafe: the loop was destroyed before the "
                       "coroutine finished");
    }
}

void start_fulfil(future_state_base& st, task<> job) {
    task_handle<> h = st.m_loop->create_task(std::move(job));
    st.m_root = &h.root();
}

} // namespace coio::detail
