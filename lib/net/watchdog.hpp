// lib/net/watchdog.hpp - one timer per connection for its timeouts, re-armed
// lazily.
//
// A connection with timeouts makes progress far more often than a timeout
// fires, so progress must not touch the timer heap: the owner only records
// when progress happened (a clock read) and the watchdog fires at the
// deadline it was armed for. Its callback then works out what is really due
// from the recorded times, acts on it, and re-arms for the next deadline.
// arm_by() only moves the timer when the new deadline is earlier than the
// queued one (a remove and an add, O(log n), no allocation beyond the heap's
// own growth); a later one waits for the next firing.
//
// The node sits in the owner (no allocation per arm), on the loop that was
// running at the first arm_by(); it must be disarmed (the destructor does)
// before that loop is destroyed. The callback runs in the loop's timer
// phase: it must not re-arm for a time that is already due.
#pragma once

#include <coio/detail/loop_core.hpp>
#include <coio/detail/timer.hpp>

#include <coio/detail/loop_clock.hpp>

#include <chrono>

namespace coio::detail {

class watchdog {
public:
    using clock = std::chrono::steady_clock;
    using fire_fn = void (*)(void* ctx) noexcept;

    watchdog(fire_fn fn, void* ctx) noexcept : m_fn(fn), m_ctx(ctx) {
        m_node.m_fire = &on_fire;
        m_node.m_ctx = this;
    }
    watchdog(const watchdog&) = delete;
    watchdog& operator=(const watchdog&) = delete;
    ~watchdog() { disarm(); }

    // Fire no later than `when`.
    void arm_by(clock::time_point when) {
        if (m_node.queued()) {
            if (m_node.m_deadline <= when) {
                return;
            }
            m_loop->remove_timer(m_node);
        } else if (m_loop == nullptr) {
            m_loop = &running_loop_core();
        }
        m_node.m_deadline = when;
        m_loop->add_timer(m_node);
    }
    void disarm() noexcept {
        if (m_node.queued()) {
            m_loop->remove_timer(m_node);
        }
    }
    [[nodiscard]] bool armed() const noexcept { return m_node.queued(); }

private:
    static void on_fire(timer_node& t) noexcept {
        auto* self = static_cast<watchdog*>(t.m_ctx);
        self->m_fn(self->m_ctx);
    }

    timer_node m_node;
    loop_core* m_loop = nullptr;
    fire_fn m_fn;
    void* m_ctx;
};

// now + d, or `never` for a zero duration (no timeout).
inline watchdog::clock::time_point due_after(watchdog::clock::time_point from,
                                             std::chrono::milliseconds d) noexcept {
    return d.count() > 0 ? from + d : watchdog::clock::time_point::max();
}

} // namespace coio::detail
