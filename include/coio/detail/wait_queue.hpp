// coio/detail/wait_queue.hpp - coroutines parked until someone notifies them.
//
// The building block for events, conditions and the server's close/idle
// notifications. Waiting is a cancellation point: a cancelled waiter is
// unlinked and throws cancelled_error. notify posts handles to the ready
// queue; it never resumes anyone inline.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/cancel_listener.hpp>
#include <coio/detail/promise.hpp>

#include <coroutine>
#include <cstddef>

namespace coio::detail {

class wait_queue {
public:
    wait_queue() = default;
    wait_queue(const wait_queue&) = delete;
    wait_queue& operator=(const wait_queue&) = delete;

    class awaiter {
    public:
        explicit awaiter(wait_queue& q) noexcept : m_queue(&q) {}
        awaiter(const awaiter&) = delete;
        awaiter& operator=(const awaiter&) = delete;
        ~awaiter() {
            if (m_linked) {
                m_queue->unlink(*this); // frame destroyed while waiting
            }
        }

        static bool await_ready() noexcept { return false; }
        template <class P>
        bool await_suspend(std::coroutine_handle<P> h) {
            if (m_cancel.pending(h)) {
                return false;
            }
            loop_core* loop = loop_of(h);
            m_loop = loop != nullptr ? loop : &running_loop_core();
            m_handle = h;
            m_queue->link(*this);
            m_cancel.listen(&on_cancel, this);
            return true;
        }
        void await_resume() { m_cancel.finish(); }

    private:
        friend class wait_queue;
        static void on_cancel(void* self) noexcept {
            auto* a = static_cast<awaiter*>(self);
            a->m_queue->unlink(*a);
            a->m_cancel.mark();
            a->m_loop->post(a->m_handle);
        }

        wait_queue* m_queue;
        loop_core* m_loop = nullptr;
        cancel_listener m_cancel;
        std::coroutine_handle<> m_handle;
        awaiter* m_prev = nullptr;
        awaiter* m_next = nullptr;
        bool m_linked = false;
    };

    // Suspend until notified (FIFO).
    [[nodiscard]] awaiter wait() noexcept { return awaiter(*this); }

    // Wake the longest waiter; false if none.
    bool notify_one() noexcept {
        awaiter* a = m_head;
        if (a == nullptr) {
            return false;
        }
        unlink(*a);
        a->m_cancel.stop();
        a->m_loop->post(a->m_handle);
        return true;
    }
    // Wake every waiter; returns how many.
    std::size_t notify_all() noexcept {
        std::size_t n = 0;
        while (notify_one()) {
            ++n;
        }
        return n;
    }
    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }

private:
    void link(awaiter& a) noexcept {
        a.m_prev = m_tail;
        a.m_next = nullptr;
        if (m_tail != nullptr) {
            m_tail->m_next = &a;
        } else {
            m_head = &a;
        }
        m_tail = &a;
        a.m_linked = true;
    }
    void unlink(awaiter& a) noexcept {
        (a.m_prev != nullptr ? a.m_prev->m_next : m_head) = a.m_next;
        (a.m_next != nullptr ? a.m_next->m_prev : m_tail) = a.m_prev;
        a.m_prev = a.m_next = nullptr;
        a.m_linked = false;
    }

    awaiter* m_head = nullptr;
    awaiter* m_tail = nullptr;
};

} // namespace coio::detail
