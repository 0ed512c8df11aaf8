// coio/detail/wait_state.hpp - the machinery behind coio::wait and
// coio::as_completed: task_watches (task_watch.hpp) tell them when tasks
// finish; nothing is forwarded to the tasks.
#pragma once

#include <coio/detail/cancel_slot.hpp>
#include <coio/detail/task_watch.hpp>
#include <coio/detail/timer.hpp>

#include <chrono>
#include <coroutine>
#include <cstddef>
#include <vector>

namespace coio {

// When coio::wait returns (asyncio's FIRST_COMPLETED, FIRST_EXCEPTION,
// ALL_COMPLETED).
enum class return_when : unsigned char {
    first_completed, // some task finished (or was cancelled)
    first_exception, // some task raised (cancelled_error does not count), or all finished
    all_completed,   // every task finished
};

} // namespace coio

namespace coio::detail {

using wait_clock = std::chrono::steady_clock;

// The roots behind a vector of handles (throws std::logic_error on an empty
// handle).
template <class H>
std::vector<root_base*> roots_of(const std::vector<H>& handles) {
    std::vector<root_base*> roots;
    roots.reserve(handles.size());
    for (const H& h : handles) {
        roots.push_back(&h.root());
    }
    return roots;
}

// True if the finished task `r` raised something other than cancelled_error.
bool task_failed(const root_base& r) noexcept;

// One co_await of coio::wait (lib/wait.cpp).
class wait_core final : public watch_target {
public:
    // Throws std::invalid_argument if `roots` is empty.
    wait_core(std::vector<root_base*> roots, return_when when, wait_clock::time_point deadline);
    wait_core(const wait_core&) = delete;
    wait_core& operator=(const wait_core&) = delete;
    ~wait_core();

    // The condition holds already: do not suspend.
    [[nodiscard]] bool ready() const noexcept { return satisfied(); }
    // Returns false if the caller must not suspend (a cancel is pending).
    bool suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot);
    // Stops watching; throws cancelled_error if the caller was cancelled.
    void resume();

    void task_done(std::size_t index) noexcept override;

private:
    [[nodiscard]] bool satisfied() const noexcept;
    void wake() noexcept;
    void unpark() noexcept;
    static void on_fire(timer_node& t) noexcept;
    static void on_cancel(void* self) noexcept;

    std::vector<root_base*> m_roots;
    task_watches m_watches{*this};
    timer_node m_timer;
    std::coroutine_handle<> m_handle;
    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
    std::size_t m_done = 0;
    return_when m_when;
    bool m_failed = false;
    bool m_parked = false;
    bool m_cancelled = false;
};

// The shared state of a coio::as_completed (lib/wait.cpp): tasks in the order
// they finish.
class completion_queue final : public watch_target {
public:
    // Watches every root not finished; finished ones are queued at once, in
    // input order.
    completion_queue(std::vector<root_base*> roots, wait_clock::time_point deadline);
    completion_queue(const completion_queue&) = delete;
    completion_queue& operator=(const completion_queue&) = delete;
    ~completion_queue();

    // Tasks not yet handed out by take().
    [[nodiscard]] std::size_t remaining() const noexcept { return m_remaining; }
    // A finished task can be taken, or nothing is left, or the deadline passed.
    [[nodiscard]] bool ready() const noexcept;
    // Returns false if the caller must not suspend (a cancel is pending).
    // Throws std::logic_error if another next() is being awaited.
    bool suspend(std::coroutine_handle<> h, loop_core* loop, cancel_slot* slot);
    // The index of the next finished task; no_task when every task was handed
    // out. Throws cancelled_error (the caller was cancelled) or timeout_error
    // (the deadline passed and the tasks left have not finished by then).
    std::size_t take();

    static constexpr std::size_t no_task = ~std::size_t{0};

    void task_done(std::size_t index) noexcept override;

private:
    [[nodiscard]] bool expired() const noexcept;
    void wake() noexcept;
    void unpark() noexcept;
    static void on_fire(timer_node& t) noexcept;
    static void on_cancel(void* self) noexcept;

    std::vector<std::size_t> m_finished; // indices in completion order
    std::size_t m_head = 0;              // next in m_finished to hand out
    std::size_t m_remaining;
    wait_clock::time_point m_deadline;
    task_watches m_watches{*this};
    // The next() being awaited, if any.
    timer_node m_timer;
    std::coroutine_handle<> m_handle;
    loop_core* m_loop = nullptr;
    cancel_slot* m_slot = nullptr;
    bool m_parked = false;
    bool m_cancelled = false;
};

} // namespace coio::detail
