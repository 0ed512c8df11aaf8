// lib/remote_waiter.cpp - tasks parked on work other threads complete
// (detail/remote_waiter.hpp).
#include <coio/detail/remote_waiter.hpp>
#include <coio/event_loop.hpp>

namespace coio::detail {

void remote_waiter_list::push_back(remote_waiter& w) noexcept {
    w.m_prev = m_tail;
    w.m_next = nullptr;
    (m_tail != nullptr ? m_tail->m_next : m_head) = &w;
    m_tail = &w;
    w.m_parked = true;
}

void remote_waiter_list::unlink(remote_waiter& w) noexcept {
    (w.m_prev != nullptr ? w.m_prev->m_next : m_head) = w.m_next;
    (w.m_next != nullptr ? w.m_next->m_prev : m_tail) = w.m_prev;
    w.m_prev = w.m_next = nullptr;
    w.m_parked = false;
}

remote_waiter* remote_waiter_list::pop_front() noexcept {
    remote_waiter* w = m_head;
    if (w != nullptr) {
        unlink(*w);
    }
    return w;
}

remote_waiter* remote_waiter_list::take_all() noexcept {
    remote_waiter* head = m_head;
    for (remote_waiter* w = head; w != nullptr; w = w->m_next) {
        w->m_parked = false;
    }
    m_head = m_tail = nullptr;
    return head;
}

remote_waiter* remote_waiter_list::next_taken(const remote_waiter& w) noexcept {
    return w.m_next;
}

void remote_waiter::park(std::mutex& mx, remote_waiter_list& list) noexcept {
    m_mutex = &mx;
    m_list = &list;
    list.push_back(*this);
    m_loop->external_begin(true);
}

remote_waiter::~remote_waiter() {
    if (m_mutex == nullptr) {
        return;
    }
    bool was_parked = false;
    {
        std::lock_guard lock(*m_mutex);
        if (m_parked) {
            m_list->unlink(*this);
            was_parked = true;
        }
    }
    if (was_parked) {
        m_loop->external_end(true);
        if (m_slot != nullptr) {
            m_slot->detach();
        }
    }
}

void remote_waiter::on_cancel(void* self) noexcept {
    auto* w = static_cast<remote_waiter*>(self);
    {
        std::lock_guard lock(*w->m_mutex);
        if (!w->m_parked) {
            return; // handed its outcome already: the wake-up is on its way
        }
        w->m_list->unlink(*w);
    }
    w->m_cancelled = true;
    w->m_loop->external_end(true);
    w->m_loop->post(w->m_handle);
}

void remote_waiter::resume_here() noexcept {
    m_loop->external_end(true);
    // A result is delivered: a cancel from now on is for the next await.
    if (m_slot != nullptr) {
        m_slot->detach();
    }
    m_loop->post(m_handle);
}

void wake_remote(remote_waiter& w) noexcept {
    event_loop& target = w.m_loop->owner();
    if (event_loop::current() == &target) {
        w.resume_here();
        return;
    }
    // One pointer: std::function keeps it without allocating.
    target.call_soon_threadsafe([p = &w] { p->resume_here(); });
}

} // namespace coio::detail
