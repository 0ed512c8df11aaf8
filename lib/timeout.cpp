// lib/timeout.cpp - the non-template half of wait_for / timeout
// (detail/timeout_state.hpp).
#include "exception_text.hpp"

#include <coio/cancel.hpp>
#include <coio/event_loop.hpp>
#include <coio/timeout.hpp>

#include <stdexcept>

namespace coio::detail {

timeout_core::timeout_core(time_point when, deadline_state* state)
    : gather_core(1, false), m_state(state) {
    m_timer.m_deadline = when;
    m_timer.m_fire = &on_fire;
    m_timer.m_ctx = this;
}

// Reached with the timer queued only if the frame is destroyed mid-await.
timeout_core::~timeout_core() {
    stop();
}

bool timeout_core::begin(std::coroutine_handle<> parent, loop_core* loop,
                         cancel_slot* parent_slot) {
    if (m_state != nullptr && m_state->m_active != nullptr) {
        throw std::logic_error("coio::timeout: this deadline already guards another await");
    }
    m_event_loop = &core_or_running(loop);
    if (parent_slot != nullptr && parent_slot->requested()) {
        return start(parent, m_event_loop, parent_slot); // false: the child never starts
    }
    // The timer first: if adding it throws, nothing has started yet.
    if (m_timer.m_deadline != time_point::max()) {
        m_event_loop->add_timer(m_timer);
    }
    if (m_state != nullptr) {
        m_state->m_active = this;
    }
    return start(parent, m_event_loop, parent_slot);
}

void timeout_core::stop() noexcept {
    if (m_timer.queued()) {
        m_event_loop->remove_timer(m_timer);
    }
    if (m_state != nullptr && m_state->m_active == this) {
        m_state->m_active = nullptr;
    }
}

void timeout_core::on_fire(timer_node& t) noexcept {
    auto* self = static_cast<timeout_core*>(t.m_ctx);
    if (self->m_children[0].m_h.done()) {
        return; // the child finished first; the caller is on its way
    }
    self->m_fired = true;
    if (self->m_state != nullptr) {
        self->m_state->m_expired = true;
    }
    self->m_slots[0].request();
}

void timeout_core::reschedule(time_point when) {
    if (m_state != nullptr) {
        m_state->m_when = when;
    }
    if (m_fired) {
        return; // the cancel is on its way; it cannot be withdrawn
    }
    if (m_timer.queued()) {
        m_event_loop->remove_timer(m_timer);
    }
    m_timer.m_deadline = when;
    if (when != time_point::max()) {
        m_event_loop->add_timer(m_timer);
    }
}

void timeout_core::end(const std::exception_ptr& child_error, bool child_ran) {
    stop();
    if (m_parent_slot != nullptr) {
        m_parent_slot->detach();
    }
    const bool child_cancelled = !child_ran || is_cancelled(child_error);
    if (m_cancelled && child_cancelled) {
        m_parent_slot->consume();
        throw cancelled_error{};
    }
    if (m_fired && child_cancelled) {
        throw timeout_error{};
    }
}

} // namespace coio::detail
