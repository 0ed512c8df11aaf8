// coio/timeout.hpp - wait_for, timeout, timeout_at, deadline (asyncio.wait_for,
// asyncio.timeout / timeout_at and their Timeout object).
//
//   int v = co_await coio::wait_for(fetch(), 2s);        // throws timeout_error
//   int v = co_await coio::timeout(2s, fetch());         // the same, asyncio.timeout order
//
//   coio::deadline d(2s);                                // a deadline you can move
//   int v = co_await coio::timeout(d, fetch_all(d));     // fetch_all may d.reschedule(...)
//   if (d.expired()) { ... }
//
// How it runs: the awaitable (task<T>, task_handle<T>, any awaitable) becomes
// the only child of the await, with its own cancel slot, like a one-child
// gather. When the deadline passes, the child is cancelled and the await WAITS
// until the child has finished - the timer, socket operation or task it was
// in is really cancelled - and then throws timeout_error. So nothing the child
// started is still running when the caller goes on.
//
// Outcomes, in order (asyncio 3.12 behaves the same):
//  - The caller is cancelled: the child is cancelled and, once it finished
//    with cancelled_error, cancelled_error propagates (also if the deadline
//    fired meanwhile: the caller's cancel wins, as with nested asyncio.timeout).
//  - The deadline fired and the child finished with cancelled_error:
//    timeout_error.
//  - Otherwise the child's own outcome: its value - also when it caught the
//    cancel and returned something anyway (deadline::expired() then says the
//    timeout fired) - or the exception it threw.
//  A cancel of the caller that the child answered with a value leaves the
//  caller's request pending: its next await throws (cancel_slot.hpp).
//
// Why a deadline object and not a context manager: C++ has no async `with`,
// so the guarded code is an awaitable passed in. To move the deadline from
// inside that code (asyncio's Timeout.reschedule), create a coio::deadline
// first and hand a copy to the body: copies share one state (like a
// task_handle), so the body takes it BY VALUE - coroutine parameters must not
// be references - and nothing dangles whichever frame ends first.
//
// Durations passed to wait_for/timeout count from when the await starts
// (these return lazy tasks); deadline(d) counts from its construction, as
// asyncio.timeout(delay) does. A deadline in the past still lets the child
// start: it is cancelled before it runs, so it stops at its first await.
#pragma once

#include <coio/detail/timeout_state.hpp>
#include <coio/task.hpp>

#include <chrono>
#include <exception>
#include <memory>
#include <utility>

namespace coio {

// The deadline of a timeout passed (asyncio.TimeoutError).
class timeout_error : public std::exception {
public:
    [[nodiscard]] const char* what() const noexcept override { return "coio: timed out"; }
};

// A movable deadline for timeout(deadline, awaitable) (asyncio's Timeout
// object). Copies share one state; keep one and pass copies by value.
// A deadline guards one await at a time; it can guard several in turn (a
// budget for a sequence of steps): expired() stays true once it fired.
class deadline {
public:
    using clock = std::chrono::steady_clock;
    using time_point = clock::time_point;
    static constexpr time_point never = time_point::max();

    // No deadline (asyncio.timeout(None)); reschedule() can set one later.
    deadline() : deadline(never) {}
    explicit deadline(time_point when)
        : m_state(std::make_shared<detail::deadline_state>(detail::deadline_state{when})) {}
    // now + d (saturating at never).
    template <class Rep, class Period>
    explicit deadline(std::chrono::duration<Rep, Period> d) : deadline(detail::deadline_after(d)) {}

    [[nodiscard]] time_point when() const noexcept { return m_state->m_when; }
    // The deadline passed while it guarded an await and cancelled the child.
    [[nodiscard]] bool expired() const noexcept { return m_state->m_expired; }
    // It guards an await now.
    [[nodiscard]] bool active() const noexcept { return m_state->m_active != nullptr; }

    // Move the deadline, earlier or later, or to `never`. While it guards an
    // await the timer moves too; a time in the past fires on the next loop
    // iteration. Once it has fired for the current await, the cancel cannot be
    // withdrawn (asyncio raises instead): the new time applies to later awaits.
    void reschedule(time_point when) {
        if (m_state->m_active != nullptr) {
            m_state->m_active->reschedule(when);
        } else {
            m_state->m_when = when;
        }
    }
    // reschedule(now + d).
    template <class Rep, class Period>
    void reschedule(std::chrono::duration<Rep, Period> d) {
        reschedule(detail::deadline_after(d));
    }

    // (detail) for timeout(deadline, ...).
    [[nodiscard]] detail::deadline_state* state() const noexcept { return m_state.get(); }

private:
    std::shared_ptr<detail::deadline_state> m_state;
};

// Run `a` with a deadline of now + d; throw timeout_error if it passes
// (asyncio.wait_for). Suspends until `a` has finished, also on timeout.
template <class A, class Rep, class Period>
task<detail::await_result_t<A>> wait_for(A a, std::chrono::duration<Rep, Period> d) {
    co_return co_await detail::timeout_awaiter<A>(std::move(a), detail::deadline_after(d), nullptr);
}

// asyncio.timeout(delay) around `a`: the same as wait_for(a, d).
template <class A, class Rep, class Period>
task<detail::await_result_t<A>> timeout(std::chrono::duration<Rep, Period> d, A a) {
    co_return co_await detail::timeout_awaiter<A>(std::move(a), detail::deadline_after(d), nullptr);
}

// asyncio.timeout_at(when) around `a`.
template <class A>
task<detail::await_result_t<A>> timeout_at(deadline::time_point when, A a) {
    co_return co_await detail::timeout_awaiter<A>(std::move(a), when, nullptr);
}

// asyncio.timeout around `a`, with a deadline the caller (or `a`, given a copy)
// can reschedule while it runs and ask expired() afterwards. `d` is copied:
// the copy keeps the shared state alive for the whole await.
template <class A>
task<detail::await_result_t<A>> timeout(deadline d, A a) {
    co_return co_await detail::timeout_awaiter<A>(std::move(a), d.when(), d.state());
}

} // namespace coio
