// lib/timer_callback.cpp - call_later's state (detail/timer_callback.hpp).
#include <coio/detail/timer_callback.hpp>
#include <coio/event_loop.hpp>

namespace coio::detail {

timer_callback_base::timer_callback_base() noexcept {
    m_close = &on_close;
    m_timer.m_fire = &on_fire;
    m_timer.m_ctx = this;
}

void timer_callback_base::schedule(loop_core& loop, time_point when) {
    m_timer.m_deadline = when;
    loop.add_timer(m_timer);
    m_loop = &loop;
    loop.attach(*this);
}

void timer_callback_base::finish() noexcept {
    if (m_loop == nullptr) {
        return;
    }
    if (m_timer.queued()) {
        m_loop->remove_timer(m_timer);
    }
    m_loop->detach(*this);
    m_loop = nullptr;
    drop();
    release(); // the pending reference; may free this
}

void timer_callback_base::on_fire(timer_node& t) noexcept {
    auto* self = static_cast<timer_callback_base*>(t.m_ctx);
    // The runner carries the pending reference; it is one pointer, which
    // std::function stores without allocating.
    self->m_loop->owner().call_soon([self] { self->run(); });
}

void timer_callback_base::run() {
    struct finisher {
        timer_callback_base* self;
        ~finisher() { self->finish(); }
    } f{this};
    if (m_cancelled || m_loop == nullptr) {
        return;
    }
    m_ran = true;
    invoke();
}

void timer_callback_base::cancel() noexcept {
    if (m_ran || m_cancelled || m_loop == nullptr) {
        return;
    }
    m_cancelled = true;
    if (m_timer.queued()) {
        finish();
    }
    // Otherwise the runner is queued: it sees m_cancelled and finishes.
}

void timer_callback_base::on_close(loop_resource& r) noexcept {
    auto& self = static_cast<timer_callback_base&>(r);
    // run_until_complete ends with no callback queued, so the timer is still
    // pending here; in the loop's destructor a queued runner is dropped with
    // the loop's callback queue without running.
    self.m_cancelled = true;
    self.finish();
}

} // namespace coio::detail
