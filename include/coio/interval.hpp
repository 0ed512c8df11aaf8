// coio/interval.hpp - interval: wake up every period (Tokio's
// time::interval, with its MissedTickBehavior).
//
//   coio::interval every(1s);                 // ticks at start+1s, start+2s, ...
//   for (;;) {
//       co_await every.tick();
//       send_heartbeat();
//   }
//
// tick() suspends until the next tick is due and returns the time it was
// due at (not when it resumed). Ticks are on a fixed schedule, first + k *
// period; `interval(period)` starts one period from now, `interval(first,
// period)` at `first` (Tokio's interval ticks at once; pass coio::now() for that).
//
// Missed ticks: when the task comes back to tick() too late - the loop was
// busy, or the work between ticks took longer than a period - the tick that
// is due fires at once (through the timer queue, so other tasks run first).
// What follows depends on the behaviour (Tokio's names):
//   skip  (default) - the ticks that were missed are dropped; the next one is
//         the next point of the original schedule after now. Keeps the phase,
//         never fires more than once per period: what heartbeats, polls and
//         housekeeping want.
//   burst - every missed tick fires, back to back, until the schedule has
//         caught up (Tokio's default); for counting or rate accounting.
//   delay - the schedule restarts from now: the next tick is a whole period
//         after the late one.
// A tick counts as missed once the next one is due too (resumed at or after
// scheduled + period); a tick that is merely a little late moves nothing.
//
// Cancellation: tick() is a cancellation point (like sleep); a cancelled tick
// is not consumed - the next tick() waits for the same time.
//
// The interval must outlive its tick() awaits; one tick() at a time. The
// awaiter is movable until awaited (wait_for(every.tick(), d) works).
// Throws std::invalid_argument for a period that is not positive.
#pragma once

#include <coio/sleep.hpp>

#include <chrono>

namespace coio {

enum class missed_tick : unsigned char { skip, burst, delay };

class interval {
public:
    using clock = std::chrono::steady_clock;

    template <class Rep, class Period>
    explicit interval(std::chrono::duration<Rep, Period> period,
                      missed_tick behaviour = missed_tick::skip)
        : interval(coio::now() + to_clock(period), to_clock(period), behaviour) {}
    template <class Rep, class Period>
    interval(clock::time_point first, std::chrono::duration<Rep, Period> period,
             missed_tick behaviour = missed_tick::skip)
        : interval(first, to_clock(period), behaviour) {}

    class tick_awaiter {
    public:
        explicit tick_awaiter(interval& iv) noexcept
            : m_iv(&iv), m_scheduled(iv.m_next), m_sleep(iv.m_next) {}

        static bool await_ready() noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            return m_sleep.await_suspend(h);
        }
        // The time the tick was due at. Throws cancelled_error if cancelled.
        clock::time_point await_resume() {
            m_sleep.await_resume();
            m_iv->advance(m_scheduled, coio::now());
            return m_scheduled;
        }

    private:
        interval* m_iv;
        clock::time_point m_scheduled;
        detail::sleep_awaiter m_sleep;
    };

    // Suspend until the next tick.
    [[nodiscard]] tick_awaiter tick() noexcept { return tick_awaiter(*this); }
    // Restart the schedule: the next tick is one period from now.
    void reset() noexcept { m_next = coio::now() + m_period; }

    [[nodiscard]] clock::duration period() const noexcept { return m_period; }
    // When the next tick is due.
    [[nodiscard]] clock::time_point next() const noexcept { return m_next; }
    [[nodiscard]] missed_tick behaviour() const noexcept { return m_behaviour; }
    void set_behaviour(missed_tick b) noexcept { m_behaviour = b; }

    // (detail) The tick due at `scheduled` was delivered at `now`: move the
    // schedule on (public for the tests of the missed-tick rules).
    void advance(clock::time_point scheduled, clock::time_point now) noexcept;

private:
    interval(clock::time_point first, clock::duration period, missed_tick behaviour);
    template <class Rep, class Period>
    static clock::duration to_clock(std::chrono::duration<Rep, Period> d) {
        return std::chrono::ceil<clock::duration>(d);
    }

    clock::time_point m_next;
    clock::duration m_period;
    missed_tick m_behaviour;
};

} // namespace coio
