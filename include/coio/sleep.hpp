// coio/sleep.hpp - sleep, sleep_until, yield_now.
//
// All three suspend the calling task and are cancellation points: a pending
// cancel throws cancelled_error before suspending, and a cancel while asleep
// removes the timer and throws at once.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/await_printer.hpp>
#include <coio/detail/cancel_listener.hpp>
#include <coio/detail/deadline.hpp>
#include <coio/detail/promise.hpp>
#include <coio/detail/timer.hpp>
#include <coio/event_loop.hpp>

#include <chrono>
#include <coroutine>

namespace coio {

namespace detail {

class sleep_awaiter {
public:
    using time_point = std::chrono::steady_clock::time_point;

    explicit sleep_awaiter(time_point deadline) noexcept { m_timer.m_deadline = deadline; }
    // Movable until awaited (to hand a sleep to wait_for, gather, ...).
    sleep_awaiter(sleep_awaiter&& o) noexcept : sleep_awaiter(o.m_timer.m_deadline) {
        if (o.m_timer.queued()) {
            std::terminate(); // moved while sleeping
        }
    }
    sleep_awaiter& operator=(sleep_awaiter&&) = delete;
    // Reached with the timer queued only if the frame is destroyed mid-sleep.
    ~sleep_awaiter() {
        if (m_timer.queued()) {
            m_loop->remove_timer(m_timer);
        }
    }

    static bool await_ready() noexcept { return false; }

    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        if (m_cancel.pending(h)) {
            return false;
        }
        m_loop = &core_or_running(loop_of(h));
        m_handle = h;
        m_timer.m_fire = &on_fire;
        m_timer.m_ctx = this;
        m_loop->add_timer(m_timer);
        m_cancel.listen(hook_of<&on_cancel, &describe>, this);
        return true;
    }

    void await_resume() { m_cancel.finish(); }

private:
    static void on_fire(timer_node& t) noexcept {
        auto* self = static_cast<sleep_awaiter*>(t.m_ctx);
        // The sleep is over: a cancel that comes before the resume is for the
        // next await (cancel_listener.hpp).
        self->m_cancel.stop();
        self->m_loop->post(self->m_handle);
    }
    static void on_cancel(void* ctx) noexcept {
        auto* self = static_cast<sleep_awaiter*>(ctx);
        self->m_loop->remove_timer(self->m_timer);
        self->m_cancel.mark();
        self->m_loop->post(self->m_handle);
    }
    static void describe(const void* ctx, await_printer& out) {
        const auto* self = static_cast<const sleep_awaiter*>(ctx);
        const auto left = self->m_timer.m_deadline - coio::now();
        out.text("sleep ");
        out.seconds(std::chrono::duration<double>(left).count());
        out.text(" left");
    }

    timer_node m_timer;
    loop_core* m_loop = nullptr;
    cancel_listener m_cancel;
    std::coroutine_handle<> m_handle;
};

class yield_awaiter {
public:
    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        m_slot = slot_of(h);
        if (m_slot != nullptr && m_slot->requested()) {
            return false;
        }
        core_or_running(loop_of(h)).post(h);
        return true;
    }
    void await_resume() const {
        if (m_slot != nullptr && m_slot->requested()) {
            m_slot->consume();
            throw cancelled_error{};
        }
    }

private:
    cancel_slot* m_slot = nullptr;
};

} // namespace detail

// Suspend until `deadline` (never earlier) on the loop's clock: compute it
// from coio::now() (event_loop::pause_time). A deadline in the past still
// goes through the timer queue, so it yields to other ready tasks.
[[nodiscard]] inline detail::sleep_awaiter
sleep_until(std::chrono::steady_clock::time_point deadline) {
    return detail::sleep_awaiter(deadline);
}

// Suspend for at least `d` (asyncio.sleep). A duration too long to add to
// now() (hours::max(), duration::max()) sleeps until time_point::max(): never,
// unless cancelled.
template <class Rep, class Period>
[[nodiscard]] detail::sleep_awaiter sleep(std::chrono::duration<Rep, Period> d) {
    return detail::sleep_awaiter(detail::deadline_after(d));
}

// Let every other ready task run once, then continue (asyncio.sleep(0)).
[[nodiscard]] inline detail::yield_awaiter yield_now() noexcept {
    return {};
}

} // namespace coio
