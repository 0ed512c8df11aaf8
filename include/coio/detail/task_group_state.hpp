// coio/detail/task_group_state.hpp - the machinery behind coio::task_group.
//
// Each child is a task made by the loop's create_task around run_in_group(),
// which reports the child's outcome to the group before the task finishes.
// The group keeps an intrusive list of group_node, one per unfinished child;
// the node is owned by the child's frame (a by-value parameter), so a group
// that goes away first only has to clear each node's back pointer.
#pragma once

#include <coio/cancel.hpp>
#include <coio/detail/gather_state.hpp>
#include <coio/detail/root.hpp>
#include <coio/result.hpp>
#include <coio/task.hpp>

#include <coroutine>
#include <exception>
#include <memory>
#include <utility>

namespace coio {
class task_group;
}

namespace coio::detail {

struct group_node {
    group_node() = default;
    group_node(const group_node&) = delete;
    group_node& operator=(const group_node&) = delete;
    // Unlinks if the child's frame is destroyed unfinished (loop teardown).
    ~group_node();

    // Report the child's outcome (null: value; cancelled_error is not a
    // failure). Unlinks. Runs inside the child's frame, resumes nobody.
    void done(std::exception_ptr e) noexcept;

    task_group* m_group = nullptr; // null once unlinked or the group is gone
    root_base* m_root = nullptr;   // the child's task, set right after create_task
    group_node* m_prev = nullptr;
    group_node* m_next = nullptr;
};

// The body of every group child. A child whose cancel was requested before it
// started never runs `t` at all (asyncio: a task cancelled before its first
// step never runs); `t` is then destroyed unstarted.
template <class T>
task<T> run_in_group(task<T> t, std::unique_ptr<group_node> n) {
    result<T> r;
    if (n->m_root->m_own_slot.requested()) {
        n->m_root->m_own_slot.consume();
        r.set_exception(std::make_exception_ptr(cancelled_error{}));
    } else {
        try {
            if constexpr (std::is_void_v<T>) {
                co_await std::move(t);
                r.set_value();
            } else {
                r.set_value(co_await std::move(t));
            }
        } catch (...) {
            r.set_exception(std::current_exception());
        }
    }
    if (n->m_group != nullptr) {
        n->done(r.exception());
    }
    co_return std::move(r).value();
}

// co_await task_group::wait(). Always waits for every child; cancellation of
// the waiting task cancels them all first.
class group_wait_awaiter {
public:
    explicit group_wait_awaiter(task_group& g) noexcept : m_group(&g) {}
    // Movable until awaited (into wait_for, gather, ...).
    group_wait_awaiter(group_wait_awaiter&&) noexcept = default;
    group_wait_awaiter& operator=(const group_wait_awaiter&) = delete;
    // Reached while registered only if the frame is destroyed mid-await.
    ~group_wait_awaiter();

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        return suspend(h, loop_of(h), slot_of(h));
    }
    // Throws exception_group if any child failed, else cancelled_error if the
    // waiting task was cancelled.
    void await_resume();

private:
    friend class coio::task_group;
    bool suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot);
    static void on_cancel(void* self) noexcept;

    task_group* m_group;
    std::coroutine_handle<> m_handle;
    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
    bool m_cancelled = false;
    bool m_orphaned = false; // the group was destroyed while we waited
};

// Tell the group which slot cancels the body of with_task_group (null: none).
void set_body_slot(task_group& g, cancel_slot* slot) noexcept;

// with_task_group's body: one child with its own cancel slot, which the group
// cancels at the first child failure (asyncio cancels the `async with` body).
// A cancel of the caller is forwarded to the body and left pending, so the
// group's wait() that follows sees it.
template <class A>
class group_body_awaiter : gather_core {
public:
    using value_t = await_result_t<A>;

    group_body_awaiter(task_group& g, A a) : gather_core(1, false), m_group(&g) {
        m_children[0] = run_gather_child<A, value_t>(std::move(a), &m_result, &m_counter);
    }

    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) {
        loop_core* loop = loop_of(h);
        if (!start(h, loop != nullptr ? loop : &running_loop_core(), slot_of(h))) {
            return false;
        }
        set_body_slot(*m_group, &m_slots[0]);
        return true;
    }
    result<value_t> await_resume() {
        if (m_result.empty()) {
            finish(); // cancelled before the body started: consumes, throws
        }
        if (m_parent_slot != nullptr) {
            m_parent_slot->detach();
        }
        set_body_slot(*m_group, nullptr);
        return std::move(m_result);
    }

private:
    task_group* m_group;
    result<value_t> m_result;
};

// The group's wait() after the body of with_task_group ended with `e`
// (null: a value): a body failure cancels the children and joins the
// exception_group, as asyncio does.
group_wait_awaiter wait_after_body(task_group& g, std::exception_ptr e);

} // namespace coio::detail
