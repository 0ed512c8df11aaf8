// coio/detail/remote_waiter.hpp - a task parked on something that other
// threads complete (a concurrent_future, a channel).
//
// The owner (the future's or the channel's state) keeps its waiters in a
// remote_waiter_list guarded by its own mutex. Protocol:
//
//   await_suspend (the waiter's loop thread):
//     if (!w.prepare(h)) return false;        // a cancel is pending: throw
//     lock; if the wait is over { unlock; return false; }
//     w.park(owner_mutex, list); unlock;      // counts as outside work of the loop
//     w.listen(hook_for<&phrase>()); return true;
//   completing (any thread), with the owner's mutex held:
//     take the waiter out of the list (m_parked = false), store its outcome;
//     then, after unlocking: wake_remote(w).
//   await_resume: w.finish(); throws cancelled_error if the cancel won.
//
// wake_remote() posts the waiter right away when called on its loop's thread and
// goes through that loop's call_soon_threadsafe otherwise; either way the
// waiter is resumed by its own loop, never inside wake_remote(), and no lock is held
// while anything runs. While parked, the waiter counts as outside work of its
// loop (loop_core::external_begin), so the loop waits for the wake-up instead
// of deciding that nothing can happen, and cannot end run() or be destroyed
// before the wake-up has arrived.
//
// Cancellation (the hook runs on the waiter's thread): under the owner's
// mutex, a waiter still parked is unlinked and resumed with cancelled_error -
// nothing happened. One already taken out has its outcome and a wake-up on
// the way: the hook does nothing and the outcome is delivered (the request
// stays pending, cancel_slot rule 3) - unless the owner gives the outcome
// back (a channel's receiver does: see revoked()).
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/promise.hpp>

#include <coroutine>
#include <mutex>

namespace coio::detail {

class await_printer;

class remote_waiter;

class remote_waiter_list {
public:
    [[nodiscard]] bool empty() const noexcept { return m_head == nullptr; }
    [[nodiscard]] remote_waiter* front() const noexcept { return m_head; }
    void push_back(remote_waiter& w) noexcept;
    void unlink(remote_waiter& w) noexcept;
    // Take the longest waiter out (m_parked = false); null if none.
    remote_waiter* pop_front() noexcept;
    // Take every waiter out (m_parked = false), as a chain to walk with
    // next_taken() - read it before waking the waiter it came from.
    remote_waiter* take_all() noexcept;
    [[nodiscard]] static remote_waiter* next_taken(const remote_waiter& w) noexcept;

private:
    remote_waiter* m_head = nullptr;
    remote_waiter* m_tail = nullptr;
};

class remote_waiter {
public:
    remote_waiter() = default;
    // Movable before it is awaited (into wait_for, race, ...): a fresh one.
    remote_waiter(remote_waiter&& /*unparked*/) noexcept {}
    remote_waiter& operator=(const remote_waiter&) = delete;
    // Parked only if the awaiting frame is destroyed mid-await (loop teardown).
    ~remote_waiter();

    // Find the loop and the cancel slot; false if a cancel is pending (then
    // finish() throws).
    template <class P>
    bool prepare(std::coroutine_handle<P> h) {
        m_slot = slot_of(h);
        if (m_slot != nullptr && m_slot->requested()) {
            m_cancelled = true;
            return false;
        }
        m_loop = &core_or_running(loop_of(h));
        m_handle = h;
        return true;
    }
    // Like prepare, for an awaiter that handles cancellation itself (it
    // attaches its own hook to slot_of(h) and never calls listen()).
    template <class P>
    void bind(std::coroutine_handle<P> h) {
        m_loop = &core_or_running(loop_of(h));
        m_handle = h;
    }
    // With `mx` held: park at the back of `list`.
    void park(std::mutex& mx, remote_waiter_list& list) noexcept;
    // After unlocking: listen for a cancel. `hook` (hook_for<phrase>) says
    // what dump_tasks prints for the wait.
    void listen(const cancel_hook& hook) noexcept {
        if (m_slot != nullptr) {
            m_slot->attach(hook, this);
        }
    }
    template <cancel_slot::describe_fn Describe>
    static constexpr const cancel_hook& hook_for() noexcept {
        return hook_of<&on_cancel, Describe>;
    }
    // dump_tasks' phrases (lib/introspect.cpp).
    static void channel_send_phrase(const void* self, await_printer& out);
    static void channel_recv_phrase(const void* self, await_printer& out);
    static void future_phrase(const void* self, await_printer& out);
    // A cancel is pending although the waiter was handed its outcome (the
    // owner may give the outcome back, then throw with finish()).
    [[nodiscard]] bool revoked() const noexcept {
        return !m_cancelled && m_slot != nullptr && m_slot->requested();
    }
    // Deliver the pending request as cancelled_error.
    [[noreturn]] void throw_cancelled() {
        m_slot->consume();
        throw cancelled_error{};
    }
    // await_resume: throws cancelled_error if the cancel won.
    void finish() {
        m_mutex = nullptr; // resumed: no longer parked, nothing to unlink
        if (m_slot != nullptr) {
            m_slot->detach();
        }
        if (m_cancelled) {
            throw_cancelled();
        }
    }

private:
    friend class remote_waiter_list;
    friend void wake_remote(remote_waiter& w) noexcept;
    static void on_cancel(void* self) noexcept;
    void resume_here() noexcept; // on the waiter's loop thread

    loop_core* m_loop = nullptr;
    std::coroutine_handle<> m_handle;
    cancel_slot* m_slot = nullptr;
    std::mutex* m_mutex = nullptr; // the owner's
    remote_waiter_list* m_list = nullptr;
    remote_waiter* m_prev = nullptr;
    remote_waiter* m_next = nullptr;
    bool m_parked = false;    // guarded by *m_mutex
    bool m_cancelled = false; // the waiter's loop thread only
};

// Resume `w`, taken out of its list under the owner's mutex; call after
// unlocking (see the top of this file). Do not touch `w` afterwards.
void wake_remote(remote_waiter& w) noexcept;

} // namespace coio::detail
