// coio/detail/deadline.hpp - coio::now() + a duration, without overflow, for sleep()
// and the timeouts (timeout_state.hpp).
#pragma once

#include <coio/detail/loop_clock.hpp>

#include <chrono>

namespace coio::detail {

// now + d, saturating at time_point::max() ("never") and at the clock's epoch
// (long passed). The naive sum overflows the clock's int64 nanoseconds for
// durations like hours::max() or nanoseconds::max() and wraps to a deadline
// in the past: a sleep meant to last for ever would fire at once.
template <class Rep, class Period>
std::chrono::steady_clock::time_point deadline_after(std::chrono::duration<Rep, Period> d) {
    using clock = std::chrono::steady_clock;
    using seconds = std::chrono::duration<double>;
    const clock::time_point now = coio::now();
    // Compared in floating point: converting hours::max() to nanoseconds overflows.
    const seconds wanted(d);
    if (wanted >= seconds(clock::time_point::max() - now)) {
        return clock::time_point::max();
    }
    if (wanted <= -seconds(now.time_since_epoch())) {
        return clock::time_point{};
    }
    return now + std::chrono::ceil<clock::duration>(d);
}

} // namespace coio::detail
