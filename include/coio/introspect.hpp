// coio/introspect.hpp - what the loop's tasks are doing (asyncio's
// current_task, all_tasks, Task.set_name, and `python -m asyncio pstree`).
//
//   coio::task_ref me = co_await coio::current_task();
//   me.set_name("fetcher");
//   for (const coio::task_ref& t : coio::all_tasks()) { ... t.name() ... }
//   coio::dump_tasks(stderr);   // e.g. from a SIGUSR1 handler on the loop
//
// dump_tasks prints every unfinished task of the running loop with its id,
// name, state and the chain of awaits it is suspended in, from the task's
// own coroutine down to the operation it waits for:
//
//   3 tasks on the epoll loop
//   task #1 'main' (ready or running): main -> serve
//   task #4 'client' (waiting): handle -> read_request -> read_chunk fd 9
//   task #5 'batch' (waiting): run_batch -> gather of 2
//       [0] fetch -> sleep 0.85 s left
//       [1] fetch -> queue get
//
// A frame is named by its coroutine function (task<T>'s promise records
// __builtin_FUNCTION(); no allocation, no string built until a dump); the
// last step is the awaiter's own phrase. States: waiting (in an await that
// describes itself - sleep, socket and pipe operations, event/lock/
// semaphore/condition/queue, gather, wait_for/timeout, task handles, shield,
// task_group, to_thread), cancel requested (the request was delivered to an
// await that has not ended yet), ready or running (scheduled to run, running
// now - the task that called dump_tasks is one - or in an await that does
// not describe itself, like yield_now). The cost when nobody dumps: one more
// pointer per frame for the name and one for the awaiting frame, and a store
// or two per await.
//
// All of these work on the running loop's thread only (std::logic_error
// without a loop). dump_tasks is safe from a callback or a task; to dump on a
// signal, have a signal_set task or an add_signal_handler callback call it on
// the loop thread (examples/task_dump.cpp) - never from a C signal handler.
#pragma once

#include <coio/detail/promise.hpp>
#include <coio/detail/root.hpp>
#include <coio/task_handle.hpp>

#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <iosfwd>
#include <string>
#include <string_view>
#include <vector>

namespace coio {

// A counted reference to a task of any result type (what current_task and
// all_tasks give); like a task_handle without the result. Copy and drop it
// on the loop's thread.
class task_ref {
public:
    task_ref() noexcept = default;
    explicit task_ref(detail::root_base& r) noexcept : m_root(&r) { ++r.m_refs; }
    template <class T>
    task_ref(const task_handle<T>& h) : task_ref(h.root()) {} // NOLINT: implicit on purpose
    task_ref(const task_ref& o) noexcept : m_root(o.m_root) {
        if (m_root != nullptr) {
            ++m_root->m_refs;
        }
    }
    task_ref(task_ref&& o) noexcept : m_root(std::exchange(o.m_root, nullptr)) {}
    task_ref& operator=(task_ref o) noexcept {
        std::swap(m_root, o.m_root);
        return *this;
    }
    ~task_ref() {
        if (m_root != nullptr) {
            detail::root_release(*m_root);
        }
    }

    [[nodiscard]] bool valid() const noexcept { return m_root != nullptr; }
    [[nodiscard]] std::uint64_t id() const noexcept { return root().m_id; }
    [[nodiscard]] std::string_view name() const { return root().name(); }
    // Rename the task (asyncio's Task.set_name); empty gives "task-<id>" back.
    void set_name(std::string name) { root().set_name(std::move(name)); }
    [[nodiscard]] bool done() const noexcept { return root().m_done; }
    [[nodiscard]] bool cancelled() const noexcept { return root().cancelled(); }
    // As task_handle::cancel: false if the task is done already.
    bool cancel() noexcept {
        if (root().m_done) {
            return false;
        }
        root().own_slot().request();
        return true;
    }

    friend bool operator==(const task_ref& a, const task_ref& b) noexcept {
        return a.m_root == b.m_root;
    }

private:
    detail::root_base& root() const noexcept { return *m_root; } // valid() is the caller's
    detail::root_base* m_root = nullptr;
};

namespace detail {
class current_task_awaiter {
public:
    static bool await_ready() noexcept { return false; }
    template <class P>
    bool await_suspend(std::coroutine_handle<P> h) noexcept {
        m_slot = slot_of(h);
        return false; // never suspends
    }
    [[nodiscard]] task_ref await_resume() const noexcept {
        root_base* r = root_of(m_slot);
        return r != nullptr ? task_ref(*r) : task_ref();
    }

private:
    cancel_slot* m_slot = nullptr;
};
} // namespace detail

// co_await coio::current_task(): the task (create_task's, or run's 'main')
// the awaiting coroutine runs in - also from inside a gather child or a
// wait_for. An empty task_ref for a coroutine that is not coio's. Does not
// suspend, is not a cancellation point.
[[nodiscard]] inline detail::current_task_awaiter current_task() noexcept {
    return {};
}

// The running loop's unfinished tasks, in creation order.
[[nodiscard]] std::vector<task_ref> all_tasks();

// The running loop's tasks and what each waits for (format above).
[[nodiscard]] std::string format_tasks();
// format_tasks() written to `out` (flushed).
void dump_tasks(std::FILE* out);
void dump_tasks(std::ostream& out);

} // namespace coio
