// lib/loop_clock.cpp - the loop's clock: coio::now() and paused time
// (event_loop::pause_time, resume_time, advance_time; docs/design.md,
// Timeouts). The jump to the next timer is in event_loop::run_once.
#include "loop_impl.hpp"

#include <coio/detail/loop_clock.hpp>
#include <coio/event_loop.hpp>

#include <chrono>
#include <utility>

namespace coio {

namespace {
// The running loop's clock state; null while no loop runs on this thread.
thread_local const detail::loop_time* t_running_time = nullptr;
} // namespace

namespace detail {
const loop_time* set_running_time(const loop_time* t) noexcept {
    return std::exchange(t_running_time, t);
}
} // namespace detail

std::chrono::steady_clock::time_point now() noexcept {
    const detail::loop_time* t = t_running_time;
    if (t == nullptr) {
        return std::chrono::steady_clock::now();
    }
    return t->paused ? t->frozen : std::chrono::steady_clock::now() + t->offset;
}

void event_loop::pause_time() noexcept {
    detail::loop_time& t = m_impl->m_time;
    if (!t.paused) {
        t.frozen = std::chrono::steady_clock::now() + t.offset;
        t.paused = true;
    }
}

void event_loop::resume_time() noexcept {
    detail::loop_time& t = m_impl->m_time;
    if (t.paused) {
        t.offset = t.frozen - std::chrono::steady_clock::now();
        t.paused = false;
    }
}

void event_loop::advance_time(std::chrono::nanoseconds d) noexcept {
    detail::loop_time& t = m_impl->m_time;
    if (d.count() <= 0) {
        return;
    }
    if (t.paused) {
        t.frozen += d;
    } else {
        t.offset += d;
    }
}

bool event_loop::time_paused() const noexcept {
    return m_impl->m_time.paused;
}

} // namespace coio
