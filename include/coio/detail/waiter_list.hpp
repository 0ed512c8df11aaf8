// coio/detail/waiter_list.hpp - coroutines parked in a sync primitive
// (event, lock, semaphore, condition, queue), with hand-off.
//
// Why not wait_queue: wait_queue follows cancel_slot rule 3 - a waiter that
// was notified returns normally even if a cancel arrives before it runs, and
// the request stays pending. The sync primitives HAND something to the waiter
// when they wake it (the lock, a permit, a queue item, a slot in a full queue,
// a notification), and asyncio's rule for them is different: a task whose
// cancel arrives after it was woken but before it ran raises CancelledError
// and does not keep what it waited for. So a waiter here ends in one of three
// ways, read by the awaiter's await_resume:
//
//   granted   - woken with the hand-off, no cancel pending: keep it;
//   cancelled - cancelled while parked (unlinked, nothing handed): throw;
//   revoked   - handed, but a cancel arrived before it ran: the awaiter gives
//               the hand-off back (to the next waiter, or back into the
//               primitive), then throws cancelled_error.
//
// So cancelled_error from a primitive always means the operation did not
// happen, and nothing is lost. Granting unlinks the waiter, detaches its
// cancel hook and posts it; nothing is ever resumed inline.
//
// Lifetime: a waiter lives in its awaiter, in the waiting frame. A primitive
// must outlive the awaits on it; if a frame is destroyed while parked (loop
// teardown) the waiter unlinks itself, and a list destroyed first forgets its
// waiters so that their later destruction touches nothing.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/promise.hpp>

#include <coroutine>
#include <cstddef>
#include <cstdint>

namespace coio::detail {

class waiter_list;

enum class wake : std::uint8_t { granted, cancelled, revoked };

class sync_waiter {
public:
    sync_waiter() = default;
    // Awaiters may be moved before they are awaited (into wait_for, gather,
    // ...): a waiter that never parked carries no state, so a move makes a
    // fresh one.
    sync_waiter(sync_waiter&& /*unparked*/) noexcept {}
    sync_waiter& operator=(const sync_waiter&) = delete;
    inline ~sync_waiter();

    // How the wait ended; call from await_resume. A waiter that never parked
    // (the fast path) counts as granted.
    [[nodiscard]] wake outcome() const noexcept {
        if (m_state == state::cancelled) {
            return wake::cancelled;
        }
        if (m_state == state::granted && m_slot != nullptr && m_slot->requested()) {
            return wake::revoked;
        }
        return wake::granted;
    }
    // Deliver the pending request as cancelled_error.
    [[noreturn]] void throw_cancelled() const {
        if (m_slot != nullptr) {
            m_slot->consume();
        }
        throw cancelled_error{};
    }
    // Woken by grant() (as opposed to never parked, or cancelled).
    [[nodiscard]] bool handed() const noexcept { return m_state == state::granted; }

private:
    friend class waiter_list;
    enum class state : std::uint8_t { idle, waiting, granted, cancelled };

    std::coroutine_handle<> m_handle;
    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
    waiter_list* m_list = nullptr;
    sync_waiter* m_prev = nullptr;
    sync_waiter* m_next = nullptr;
    state m_state = state::idle;
};

class waiter_list {
public:
    waiter_list() = default;
    waiter_list(const waiter_list&) = delete;
    waiter_list& operator=(const waiter_list&) = delete;
    ~waiter_list() {
        for (sync_waiter* w = m_head; w != nullptr; w = w->m_next) {
            w->m_list = nullptr;
        }
    }

    // From await_suspend: park `w` at the back. Returns false - do not
    // suspend; outcome() is cancelled - if a cancel is already pending.
    // An uncancellable park ignores the task's cancel slot altogether.
    template <class P>
    bool park(sync_waiter& w, std::coroutine_handle<P> h, bool cancellable = true) {
        w.m_slot = cancellable ? slot_of(h) : nullptr;
        if (w.m_slot != nullptr && w.m_slot->requested()) {
            w.m_state = sync_waiter::state::cancelled;
            return false;
        }
        loop_core* loop = loop_of(h);
        w.m_loop = loop != nullptr ? loop : &running_loop_core();
        w.m_handle = h;
        push_back(w);
        if (w.m_slot != nullptr) {
            w.m_slot->attach(&on_cancel, &w);
        }
        return true;
    }

    // The longest waiter, or null.
    [[nodiscard]] sync_waiter* front() const noexcept { return m_head; }
    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }

    // Wake `w` (parked here) with its hand-off, which the caller stores in
    // w's awaiter before or right after: the waiter runs on a later pass.
    void grant(sync_waiter& w) noexcept {
        unlink(w);
        if (w.m_slot != nullptr) {
            w.m_slot->detach();
        }
        w.m_state = sync_waiter::state::granted;
        w.m_loop->post(w.m_handle);
    }

private:
    friend class sync_waiter;

    static void on_cancel(void* ctx) noexcept {
        auto* w = static_cast<sync_waiter*>(ctx);
        if (w->m_list != nullptr) {
            w->m_list->unlink(*w);
        }
        w->m_state = sync_waiter::state::cancelled;
        w->m_loop->post(w->m_handle);
    }
    void push_back(sync_waiter& w) noexcept {
        w.m_list = this;
        w.m_prev = m_tail;
        w.m_next = nullptr;
        (m_tail != nullptr ? m_tail->m_next : m_head) = &w;
        m_tail = &w;
        w.m_state = sync_waiter::state::waiting;
        ++m_size;
    }
    void unlink(sync_waiter& w) noexcept {
        (w.m_prev != nullptr ? w.m_prev->m_next : m_head) = w.m_next;
        (w.m_next != nullptr ? w.m_next->m_prev : m_tail) = w.m_prev;
        w.m_prev = w.m_next = nullptr;
        --m_size;
    }

    sync_waiter* m_head = nullptr;
    sync_waiter* m_tail = nullptr;
    std::size_t m_size = 0;
};

inline sync_waiter::~sync_waiter() {
    if (m_state == state::waiting) {
        if (m_list != nullptr) {
            m_list->unlink(*this);
        }
        if (m_slot != nullptr) {
            m_slot->detach();
        }
    }
}

// co_await current_slot(): the awaiting chain's cancel slot (null for a
// foreign coroutine), without suspending.
struct current_slot {
    cancel_slot* m_slot = nullptr;
    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        m_slot = slot_of(h);
        return false;
    }
    [[nodiscard]] cancel_slot* await_resume() const noexcept { return m_slot; }
};

} // namespace coio::detail
