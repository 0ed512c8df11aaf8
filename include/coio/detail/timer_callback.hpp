// coio/detail/timer_callback.hpp - call_later's state and coio::timer_handle
// (asyncio.TimerHandle).
//
// One heap block per call: the callable, a timer node and a reference count
// (loop thread only, not atomic). References: each timer_handle, and one
// "pending" reference held for the loop from scheduling until the callback
// has run, was cancelled or was dropped at the end of run(). When the timer
// fires (phase 3 of an iteration) the state queues a runner with call_soon,
// so the callable runs in the callback phase that follows, in FIFO order
// with other callbacks; the runner is one pointer, so queueing it allocates
// nothing. A cancel that comes after the timer fired but before the runner
// ran still stops the call (asyncio skips cancelled handles in _ready).
#pragma once

#include <coio/detail/loop_core.hpp>
#include <coio/detail/loop_resource.hpp>
#include <coio/detail/timeout_state.hpp>
#include <coio/detail/timer.hpp>

#include <chrono>
#include <cstdint>
#include <optional>
#include <utility>

namespace coio::detail {

class timer_callback_base : public loop_resource {
public:
    using time_point = std::chrono::steady_clock::time_point;

    timer_callback_base(const timer_callback_base&) = delete;
    timer_callback_base& operator=(const timer_callback_base&) = delete;

    void add_ref() noexcept { ++m_refs; }
    void release() noexcept {
        if (--m_refs == 0) {
            delete this;
        }
    }

    // Arm the timer on `loop` (add_timer may throw std::bad_alloc: then
    // nothing is armed and the caller releases the state).
    void schedule(loop_core& loop, time_point when);
    // Stop the call if it has not run; no effect afterwards.
    void cancel() noexcept;
    // From the queued runner: call the callable unless cancelled meanwhile.
    // Its exception goes on to the loop's callback phase, which reports it.
    void run();

    [[nodiscard]] bool cancelled() const noexcept { return m_cancelled; }
    [[nodiscard]] time_point when() const noexcept { return m_timer.m_deadline; }

protected:
    timer_callback_base() noexcept;
    virtual ~timer_callback_base() = default;
    virtual void invoke() = 0;
    // Destroy the callable (once it ran, was cancelled or dropped), as
    // asyncio's TimerHandle.cancel() lets go of the callback.
    virtual void drop() noexcept = 0;

private:
    static void on_fire(timer_node& t) noexcept;
    static void on_close(loop_resource& r) noexcept;
    // Detach from the loop and drop the pending reference (once).
    void finish() noexcept;

    timer_node m_timer;
    loop_core* m_loop = nullptr; // null once finished
    std::uint32_t m_refs = 1;    // the pending reference
    bool m_cancelled = false;
    bool m_ran = false;
};

template <class F>
class timer_callback final : public timer_callback_base {
public:
    explicit timer_callback(F f) : m_f(std::move(f)) {}

private:
    void invoke() override { (*m_f)(); }
    void drop() noexcept override { m_f.reset(); }
    std::optional<F> m_f;
};

} // namespace coio::detail

namespace coio {

// What call_later / call_at return (asyncio.TimerHandle). A counted reference
// to the scheduled call: copying is cheap, dropping every handle does not
// cancel the call. Loop thread only. A handle may outlive its loop: it then
// reports cancelled() if the call never ran, and cancel() does nothing.
class timer_handle {
public:
    timer_handle() noexcept = default;
    explicit timer_handle(detail::timer_callback_base* st) noexcept : m_st(st) {
        if (m_st != nullptr) {
            m_st->add_ref();
        }
    }
    timer_handle(const timer_handle& o) noexcept : timer_handle(o.m_st) {}
    timer_handle(timer_handle&& o) noexcept : m_st(std::exchange(o.m_st, nullptr)) {}
    timer_handle& operator=(timer_handle o) noexcept {
        std::swap(m_st, o.m_st);
        return *this;
    }
    ~timer_handle() {
        if (m_st != nullptr) {
            m_st->release();
        }
    }

    [[nodiscard]] bool valid() const noexcept { return m_st != nullptr; }
    // Stop the call if it has not started (no effect afterwards, or on an
    // empty handle).
    void cancel() noexcept {
        if (m_st != nullptr) {
            m_st->cancel();
        }
    }
    // cancel() was called before the call ran, or the loop's run ended
    // before its time came (the call was dropped).
    [[nodiscard]] bool cancelled() const noexcept { return m_st != nullptr && m_st->cancelled(); }
    // When the call is (or was) due.
    [[nodiscard]] std::chrono::steady_clock::time_point when() const noexcept {
        return m_st != nullptr ? m_st->when() : std::chrono::steady_clock::time_point{};
    }

private:
    detail::timer_callback_base* m_st = nullptr;
};

namespace detail {

// call_later / call_at: take `f` by value, schedule it, return the handle.
template <class F>
timer_handle schedule_callback(loop_core& loop, std::chrono::steady_clock::time_point when, F f) {
    auto* st = new timer_callback<F>(std::move(f));
    try {
        st->schedule(loop, when);
    } catch (...) {
        st->release();
        throw;
    }
    return timer_handle(st);
}

} // namespace detail
} // namespace coio
