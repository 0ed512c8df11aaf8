// lib/wait.cpp - the non-template half of wait and as_completed
// (detail/wait_state.hpp).
#include "exception_text.hpp"

#include <coio/cancel.hpp>
#include <coio/detail/wait_state.hpp>
#include <coio/timeout.hpp>

#include <stdexcept>
#include <utility>

namespace coio::detail {

bool task_failed(const root_base& r) noexcept {
    return r.m_exception && !is_cancelled(r.m_exception);
}

// --- wait -------------------------------------------------------------------

wait_core::wait_core(std::vector<root_base*> roots, return_when when,
                     wait_clock::time_point deadline)
    : m_roots(std::move(roots)), m_when(when) {
    if (m_roots.empty()) {
        throw std::invalid_argument("coio::wait: no tasks to wait for");
    }
    for (const root_base* r : m_roots) {
        if (r->m_done) {
            ++m_done;
            m_failed = m_failed || task_failed(*r);
        }
    }
    m_timer.m_deadline = deadline;
    m_timer.m_fire = &on_fire;
    m_timer.m_ctx = this;
}

// Reached with watches or the timer still set only if the awaiting frame is
// destroyed mid-await (loop teardown).
wait_core::~wait_core() {
    if (m_parked) {
        m_parked = false;
        unpark();
    }
}

bool wait_core::satisfied() const noexcept {
    switch (m_when) {
    case return_when::first_completed:
        return m_done > 0;
    case return_when::first_exception:
        return m_failed || m_done == m_roots.size();
    case return_when::all_completed:
        break;
    }
    return m_done == m_roots.size();
}

bool wait_core::suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot) {
    m_slot = slot;
    if (slot != nullptr && slot->requested()) {
        m_cancelled = true; // resume() throws; nothing was watched
        return false;
    }
    m_loop = &core_or_running(loop);
    m_handle = h;
    // The watches first: if one cannot be allocated, nothing waits yet.
    for (std::size_t i = 0; i < m_roots.size(); ++i) {
        if (!m_roots[i]->m_done) {
            m_watches.add(*m_roots[i], i);
        }
    }
    if (m_timer.m_deadline != wait_clock::time_point::max()) {
        m_loop->add_timer(m_timer);
    }
    m_parked = true;
    if (slot != nullptr) {
        slot->attach(hook_of<&on_cancel, &describe>, this);
    }
    return true;
}

void wait_core::unpark() noexcept {
    if (m_timer.queued()) {
        m_loop->remove_timer(m_timer);
    }
    if (m_slot != nullptr) {
        m_slot->detach(); // a cancel from now on is for the caller's next await
    }
}

void wait_core::task_done(std::size_t index) noexcept {
    ++m_done;
    m_failed = m_failed || task_failed(*m_roots[index]);
    if (satisfied()) {
        wake();
    }
}

void wait_core::wake() noexcept {
    if (!m_parked) {
        return;
    }
    m_parked = false;
    unpark();
    m_loop->post(m_handle);
}

void wait_core::on_fire(timer_node& t) noexcept {
    static_cast<wait_core*>(t.m_ctx)->wake();
}

void wait_core::on_cancel(void* self) noexcept {
    auto* w = static_cast<wait_core*>(self);
    w->m_cancelled = true;
    w->wake();
}

void wait_core::resume() {
    m_watches.stop();
    if (m_cancelled) {
        m_slot->consume();
        throw cancelled_error{};
    }
}

// --- as_completed -----------------------------------------------------------

completion_queue::completion_queue(std::vector<root_base*> roots, wait_clock::time_point deadline)
    : m_remaining(roots.size()), m_deadline(deadline) {
    m_finished.reserve(roots.size());
    for (std::size_t i = 0; i < roots.size(); ++i) {
        if (roots[i]->m_done) {
            m_finished.push_back(i);
        } else {
            m_watches.add(*roots[i], i);
        }
    }
    m_timer.m_fire = &on_fire;
    m_timer.m_ctx = this;
}

bool completion_queue::expired() const noexcept {
    return m_deadline != wait_clock::time_point::max() && coio::now() >= m_deadline;
}

bool completion_queue::ready() const noexcept {
    return m_head < m_finished.size() || m_remaining == 0 || expired();
}

// Reached while parked only if the awaiting frame is destroyed mid-await.
completion_queue::~completion_queue() {
    if (m_parked) {
        m_parked = false;
        unpark();
    }
}

bool completion_queue::suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot) {
    if (m_parked) {
        throw std::logic_error("coio::as_completed: next() is already being awaited");
    }
    m_slot = slot;
    m_cancelled = false;
    if (slot != nullptr && slot->requested()) {
        m_cancelled = true;
        return false;
    }
    m_loop = &core_or_running(loop);
    m_handle = h;
    if (m_deadline != wait_clock::time_point::max()) {
        m_timer.m_deadline = m_deadline;
        m_loop->add_timer(m_timer);
    }
    m_parked = true;
    if (slot != nullptr) {
        slot->attach(hook_of<&on_cancel, &describe>, this);
    }
    return true;
}

void completion_queue::unpark() noexcept {
    if (m_timer.queued()) {
        m_loop->remove_timer(m_timer);
    }
    if (m_slot != nullptr) {
        m_slot->detach();
    }
}

void completion_queue::task_done(std::size_t index) noexcept {
    if (expired()) {
        return; // finished after the deadline: next() reports the timeout
    }
    m_finished.push_back(index); // reserved: never allocates
    wake();
}

void completion_queue::wake() noexcept {
    if (!m_parked) {
        return;
    }
    m_parked = false;
    unpark();
    m_loop->post(m_handle);
}

void completion_queue::on_fire(timer_node& t) noexcept {
    static_cast<completion_queue*>(t.m_ctx)->wake();
}

void completion_queue::on_cancel(void* self) noexcept {
    auto* q = static_cast<completion_queue*>(self);
    q->m_cancelled = true;
    q->wake();
}

std::size_t completion_queue::take() {
    if (m_cancelled) {
        m_cancelled = false;
        m_slot->consume();
        throw cancelled_error{};
    }
    if (m_head < m_finished.size()) {
        --m_remaining;
        return m_finished[m_head++];
    }
    if (m_remaining == 0) {
        return no_task;
    }
    m_watches.stop(); // the deadline passed: later finishes are not reported
    throw timeout_error{};
}

} // namespace coio::detail
