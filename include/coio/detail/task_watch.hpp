// coio/detail/task_watch.hpp - being told when tasks finish, without awaiting
// them (for wait and as_completed).
//
// Awaiting a task_handle parks the awaiting coroutine on the task; the loop
// posts it when the task finishes. To watch many tasks at once, each watch is
// a tiny coroutine of its own, parked on one task: when the loop posts and
// runs it, it calls its target's task_done(index) and frees itself. Nothing
// is forwarded to the tasks (no cancel, nothing retrieved).
//
// Stopping (stop(), or the destructor): a watch still parked on a running
// task is unlinked and destroyed. A watch whose task has finished may sit in
// the ready queue already; it cannot be taken out, so it is orphaned - it
// will run, call nobody and free itself - and counted as outside work of the
// loop (loop_core::external_begin) until then, so that the loop does not end
// run() with it still queued.
#pragma once

#include <coio/detail/root.hpp>

#include <cstddef>
#include <vector>

namespace coio::detail {

class watch_target {
public:
    // The watched task `index` has finished (called on a later pass, from the
    // watch; must not resume anything inline).
    virtual void task_done(std::size_t index) noexcept = 0;

protected:
    watch_target() = default;
    watch_target(const watch_target&) = default;
    watch_target& operator=(const watch_target&) = default;
    ~watch_target() = default;
};

class task_watches {
public:
    explicit task_watches(watch_target& target) noexcept : m_target(&target) {}
    task_watches(const task_watches&) = delete;
    task_watches& operator=(const task_watches&) = delete;
    ~task_watches() { stop(); }

    // Watch task `index`, whose root `r` has not finished. Throws
    // std::bad_alloc (nothing is watched then).
    void add(root_base& r, std::size_t index);
    // Stop every watch (see the top of this file). Idempotent.
    void stop() noexcept;
    // Watches not yet run.
    [[nodiscard]] std::size_t active() const noexcept { return m_active; }

    // (detail) for the watch coroutine.
    void fired(std::size_t index) noexcept;

private:
    watch_target* m_target;
    std::vector<void*> m_watches; // frame addresses by task index; null: none
    std::size_t m_active = 0;
};

} // namespace coio::detail
