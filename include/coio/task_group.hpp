// coio/task_group.hpp - task_group and with_task_group (asyncio.TaskGroup),
// exception_group (ExceptionGroup).
//
//   coio::task_group g;                      // explicit form
//   auto a = g.create_task(fetch(1));
//   auto b = g.create_task(fetch(2));
//   co_await g.wait();                       // the `async with` exit
//   use(a.result(), b.result());
//
//   co_await coio::with_task_group([](coio::task_group& g) -> coio::task<> {
//       g.create_task(fetch(1));             // the `async with` body
//       co_await do_other_things();
//   });
//
// Policy (asyncio.TaskGroup):
//  - Children are ordinary tasks (create_task); they start on the next pass.
//  - The first child that fails with anything but cancelled_error cancels every
//    other child (and, in with_task_group, the body). Children created after
//    that are cancelled at once: their body never runs (asyncio raises
//    RuntimeError from create_task instead; a coio handle is always usable).
//  - wait() suspends until every child has finished, then throws
//    exception_group holding every child failure (in completion order; the
//    body's own failure last) if there was one. Exceptions the group reports
//    are marked retrieved, so the loop does not report them again.
//  - Cancelling the task in wait() cancels every child, waits for them, then
//    throws cancelled_error - unless a child failed for real, then
//    exception_group wins (as in asyncio) and the cancel request stays
//    pending: the next await throws it. wait() honours a pending cancel even
//    when nothing is running.
//  - A cancelled child is not a failure.
//  - create_task after wait() has finished (or once it found nothing left to
//    wait for) throws std::logic_error ("finished", as asyncio).
//
// Explicit form vs with_task_group: asyncio cancels the `async with` body at
// the first failure and its __aexit__ always runs. With the explicit form the
// code between creating the group and co_await g.wait() is the body; the
// group cannot interrupt it (nothing would guarantee wait() is reached), so
// it only learns of the failure at wait(). If that code leaves the scope by an
// exception, the group is destroyed without wait(): it cancels its unfinished
// children and DETACHES them - they keep running on the loop (counted, owned
// by it, their frames never destroyed mid-await) and finish cancelled;
// failures the group had collected go to the loop's exception handler, and
// failures of detached children are reported by the loop as usual.
// with_task_group gives asyncio's structure: the body runs as a child the
// group can cancel, and the helper always waits for the children.
//
// Lifetime: the group is neither copyable nor movable; its children point to
// it until they finish or it is destroyed. Only one task may await wait().
#pragma once

#include <coio/detail/callable_arg.hpp>
#include <coio/detail/task_group_state.hpp>
#include <coio/event_loop.hpp>
#include <coio/task.hpp>
#include <coio/task_handle.hpp>

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio {

// Several exceptions at once (Python's ExceptionGroup). what() reads
// "unhandled errors in a task_group (2 sub-exceptions): <what 1>; <what 2>".
class exception_group : public std::exception {
public:
    exception_group(const std::string& context, std::vector<std::exception_ptr> exceptions);
    [[nodiscard]] const char* what() const noexcept override { return m_message.c_str(); }
    [[nodiscard]] const std::vector<std::exception_ptr>& exceptions() const noexcept {
        return m_exceptions;
    }

private:
    std::vector<std::exception_ptr> m_exceptions;
    std::string m_message;
};

class task_group {
public:
    task_group() = default;
    task_group(const task_group&) = delete;
    task_group& operator=(const task_group&) = delete;
    // Without a finished wait(): cancels and detaches the unfinished children
    // (they finish on the loop) and reports collected failures to the loop's
    // exception handler.
    ~task_group();

    // Start `t` as a child on the running loop (next iteration) and return
    // its handle. If the group is cancelling (a child failed, or wait() was
    // cancelled) the child is cancelled before it starts. Throws
    // std::logic_error once the group has finished.
    template <class T>
    task_handle<T> create_task(task<T> t, std::string name = {}) {
        event_loop& loop = check_open();
        auto node = std::make_unique<detail::group_node>();
        detail::group_node* n = node.get();
        task_handle<T> h =
            loop.create_task(detail::run_in_group(std::move(t), std::move(node)), std::move(name));
        adopt(*n, h.root());
        return h;
    }

    // Suspend until every child has finished (see the policy above).
    [[nodiscard]] detail::group_wait_awaiter wait() noexcept {
        return detail::group_wait_awaiter(*this);
    }

    // Children not finished yet.
    [[nodiscard]] std::size_t size() const noexcept { return m_running; }
    // A child failed or wait() was cancelled: the children are being cancelled.
    [[nodiscard]] bool cancelling() const noexcept { return m_aborting; }

private:
    friend struct detail::group_node;
    friend class detail::group_wait_awaiter;
    friend void detail::set_body_slot(task_group& g, detail::cancel_slot* slot) noexcept;
    friend detail::group_wait_awaiter detail::wait_after_body(task_group& g, std::exception_ptr e);

    event_loop& check_open();
    void adopt(detail::group_node& n, detail::root_base& r) noexcept;
    void unlink(detail::group_node& n) noexcept;
    void child_done(detail::group_node& n, std::exception_ptr e) noexcept;
    void abort() noexcept;

    detail::group_node* m_head = nullptr;
    std::size_t m_running = 0;
    std::vector<std::exception_ptr> m_errors;
    std::exception_ptr m_body_error;
    event_loop* m_loop = nullptr;
    detail::group_wait_awaiter* m_waiter = nullptr;
    detail::cancel_slot* m_body_slot = nullptr;
    bool m_aborting = false;
    bool m_finished = false;
};

// asyncio's `async with TaskGroup() as g: <body>`: calls body(g) and runs the
// result as a child the group cancels at the first failure, then waits for
// every child. Returns the body's value, or throws exception_group (child
// failures, then the body's own failure) or cancelled_error.
//
// Lifetime: `g` lives in this helper's frame and the helper waits for the body
// and every child before it ends, so the body may take `task_group&` - the one
// reference parameter that is safe here. `body` itself is kept in the frame
// too, but prefer a captureless lambda (STYLE.md §3).
namespace detail {
template <class F>
auto run_with_task_group(F body) -> task<await_result_t<std::invoke_result_t<F&, task_group&>>> {
    using body_task = std::invoke_result_t<F&, task_group&>;
    task_group g;
    auto r = co_await group_body_awaiter<body_task>(g, body(g));
    co_await wait_after_body(g, r.exception());
    co_return std::move(r).value();
}
} // namespace detail

template <class F>
auto with_task_group(F&& body)
    -> task<detail::await_result_t<std::invoke_result_t<detail::owned_t<F>&, task_group&>>> {
    detail::check_callable_arg<F>();
    return detail::run_with_task_group(detail::take_callable(std::forward<F>(body)));
}

} // namespace coio
