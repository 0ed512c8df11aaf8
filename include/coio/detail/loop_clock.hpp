// coio/detail/loop_clock.hpp - coio::now(), the loop's clock: what every coio
// timer, sleep, timeout, interval and stream timeout measures time with.
// It is std::chrono::steady_clock unless the running loop's time is paused
// or was advanced (event_loop::pause_time, advance_time).
#pragma once

#include <chrono>

namespace coio {

// The running loop's time (steady_clock's time points); steady_clock::now()
// on a thread that runs no loop. Never goes backwards.
std::chrono::steady_clock::time_point now() noexcept;

} // namespace coio
