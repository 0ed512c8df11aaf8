// coio/call_later.hpp - call_later and call_at on the running loop (asyncio
// loop.call_later / loop.call_at), returning a coio::timer_handle.
//
//   coio::timer_handle h = coio::call_later(500ms, [] { std::puts("late"); });
//   h.cancel();                 // before it ran: it never runs
//
// `f()` runs once, in the loop's callback phase (phase 4, with call_soon
// callbacks, in FIFO order) of the first iteration at or after its time -
// never earlier. It is a plain callback, not a task: it cannot co_await (start
// a task from it with create_task), and an exception it throws goes to the
// loop's exception handler as "callback raised: ...". The callable is taken
// by value and owned by the call until it has run or was cancelled; capture
// by value what it needs (it runs after the caller's frame may be gone).
//
// Lifetime: dropping the handle does not cancel the call. A call whose time
// has not come when run_until_complete returns is dropped, as asyncio.run's
// loop.close() drops it (its handle then says cancelled()), so run() still
// leaves no timer behind. Handles are for the loop's thread; one may outlive
// the loop. For a call from another thread, use call_soon_threadsafe.
// Each call throws std::logic_error if no loop runs on this thread.
#pragma once

#include <coio/detail/timer_callback.hpp>
#include <coio/event_loop.hpp>

#include <chrono>
#include <utility>

namespace coio {

// Run f() once, `delay` from now, on the running loop.
template <class Rep, class Period, class F>
timer_handle call_later(std::chrono::duration<Rep, Period> delay, F f) {
    return event_loop::running().call_later(delay, std::move(f));
}

// Run f() once at `when` (a time in the past: on the next iteration).
template <class F>
timer_handle call_at(std::chrono::steady_clock::time_point when, F f) {
    return event_loop::running().call_at(when, std::move(f));
}

} // namespace coio
