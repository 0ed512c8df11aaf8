// lib/loop_impl.hpp - the event loop's private state.
#pragma once

#include "backend/backend.hpp"
#include "timer_heap.hpp"

#include <coio/detail/loop_resource.hpp>
#include <coio/event_loop.hpp>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

namespace coio::detail {

// The loop's clock (coio::now(), event_loop::pause_time): steady_clock plus
// `offset` while it runs, `frozen` while paused.
struct loop_time {
    bool paused = false;
    std::chrono::steady_clock::time_point frozen{};
    std::chrono::nanoseconds offset{0};
};

// Makes `t` the clock coio::now() reads on this thread (the running loop's);
// returns the previous one (lib/loop_clock.cpp).
const loop_time* set_running_time(const loop_time* t) noexcept;

// COIO_SHUFFLE_SEED as a number, 0 if unset (lib/loop_shuffle.cpp).
std::uint64_t shuffle_seed_from_env() noexcept;

struct loop_impl final : completion_sink {
    loop_impl(event_loop& loop, loop_core& core) : m_loop(loop), m_core(core) {}

    // completion_sink: the backend finished an op. Posts, never resumes.
    void complete(io_op& op) noexcept override {
        op.m_pending = false;
        --m_in_flight;
        m_core.post(op.m_waiter);
    }
    // completion_sink: the op's fd is ready; the backend retries it when the
    // loop reaches it in the ready queue (run_ready).
    void schedule(io_op& op) noexcept override { m_core.m_ready.push_op(&op); }
    void unschedule(io_op& op) noexcept override { m_core.m_ready.remove_op(&op); }

    // An op taken from the ready queue: the backend retries it. Returns the
    // handle to resume if it completed, null if it waits on.
    std::coroutine_handle<> run_ready(io_op& op) noexcept {
        if (!m_backend->run_ready(op)) {
            return nullptr;
        }
        op.m_pending = false;
        --m_in_flight;
        return op.m_waiter;
    }

    void link(root_base& r) noexcept;
    void unlink(root_base& r) noexcept;
    // Report an unretrieved exception (if any) and destroy the frame.
    void destroy_root(root_base& r) noexcept;
    // The same for a root already unlinked from m_roots (m_reap).
    void destroy_unlinked(root_base& r) noexcept;
    void reap() noexcept;
    // Cancel every unfinished task; returns how many were asked.
    std::size_t cancel_all() noexcept;
    // Fire due timers; returns how many fired.
    std::size_t fire_timers();
    // Move callbacks queued by other threads to m_callbacks.
    void take_remote();
    // Phase 2: wait up to `timeout` (-1: no limit) for I/O or a wake-up,
    // busy-polling first if set (lib/loop_wait.cpp).
    void wait_for_work(std::chrono::nanoseconds timeout);
    // The busy poll; returns what is left of `timeout` to wait.
    std::chrono::nanoseconds busy_poll(std::chrono::nanoseconds timeout);
    // Run the callbacks present now (FIFO); later ones wait for the next pass.
    void run_callbacks();
    // True if something may still happen without anything new being started.
    [[nodiscard]] bool can_progress() const noexcept;
    // Close every attached loop_resource (call_later callbacks not run yet).
    void close_resources() noexcept;

    event_loop& m_loop;
    loop_core& m_core;
    std::unique_ptr<backend> m_backend;
    timer_heap m_timers;
    std::deque<std::function<void()>> m_callbacks;

    std::mutex m_remote_mutex;
    std::vector<std::function<void()>> m_remote;
    // The other buffer take_remote swaps in (loop thread only, empty between
    // takes): a hand-off does not allocate the queue's storage afresh.
    std::vector<std::function<void()>> m_remote_taken;
    std::atomic<bool> m_remote_pending{false};
    std::atomic<bool> m_parked{false}; // the loop sleeps, or is about to (lib/loop_wait.cpp)
    std::chrono::nanoseconds m_busy_poll{0};
    std::uint64_t m_shuffle_seed = 0;        // set_shuffle_seed; 0: FIFO (lib/loop_shuffle.cpp)
    std::uint64_t m_shuffle_state = 0;       // the generator's state
    std::atomic<std::uint64_t> m_wakeups{0}; // loop_stats::wakeups
    std::atomic<std::uint64_t> m_ring_wakeups{0}; // loop_stats::ring_wakeups
    loop_time m_time;
    std::size_t m_external = 0;
    std::size_t m_hand_off_waits = 0; // of m_external: tasks parked on a remote_waiter // loop
                                      // thread only: see event_loop::external_begin

    loop_resource* m_resources = nullptr; // attached by loop_core::attach
    root_base* m_roots = nullptr;         // every live root frame, doubly linked
    // Finished roots nobody holds, unlinked from m_roots and chained through
    // m_next: reported and destroyed at phase 5. A list through the roots
    // themselves, so finishing a task never allocates (it runs in noexcept
    // code, where running out of memory would end the process).
    root_base* m_reap = nullptr;
    std::size_t m_tasks = 0;  // roots not finished
    std::size_t m_frames = 0; // roots not destroyed
    std::size_t m_in_flight = 0;
    std::uint64_t m_next_id = 0;
    std::uint64_t m_iterations = 0;
    std::function<void(const exception_context&)> m_handler;

    // Debug mode (lib/debug_mode.cpp).
    void debug_resume(std::coroutine_handle<> h);
    void debug_call(std::function<void()>& f);
    bool m_debug = false;
    std::chrono::nanoseconds m_slow{std::chrono::milliseconds(100)};
    root_base* m_step_finished = nullptr; // debug: a root that finished in this step
    root_base* m_main = nullptr;          // the main task while drive() runs (stop())
};

// The loop's default exception handler: one line "coio: <message>" on
// stderr (event_loop.cpp); also for a task that outlived its loop.
void default_exception_handler(const exception_context& ctx) noexcept;

// COIO_DEBUG is set to something other than "" or "0".
bool debug_from_env() noexcept;

} // namespace coio::detail
