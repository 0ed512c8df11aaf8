// coio/detail/loop_core.hpp - the loop's handle: what promises and awaiters
// hold and use (tokio's runtime Handle, as opposed to its Driver).
//
// The public coio::event_loop is the owner: run, create_task, call_soon,
// stats, the exception handler. Awaiters never see it; every coio promise
// carries a loop_core* (m_loop), and awaiters go through it to post handles,
// submit and cancel I/O, add timers and count outside work. The hot part (the
// ready queue and the stack-depth guard) is inline and free of OS types, so a
// resume costs a few loads and stores; the rest is out of line in
// lib/event_loop.cpp (spawn: lib/loop_roots.cpp).
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace coio {
class event_loop;
struct exception_context;
} // namespace coio

namespace coio::detail {

struct io_op;
struct loop_impl;
struct loop_resource;
struct timer_node;
class root_base;

// FIFO of work for the loop: coroutine handles to resume, and I/O operations
// whose fd became ready (readiness backends), whose syscall runs when their
// turn comes (lib/backend/readiness.hpp). A power-of-two ring that grows.
// An entry is a frame or io_op address; ops carry the low bit (both are at
// least 2-byte aligned), a removed op leaves a null entry behind.
class ready_queue {
public:
    ready_queue() = default;
    ready_queue(const ready_queue&) = delete;
    ready_queue& operator=(const ready_queue&) = delete;

    // The first 256 entries (event_loop's constructor: throws bad_alloc).
    void reserve_initial();
    void push(std::coroutine_handle<> h) noexcept { push_raw(h.address()); }
    void push_op(io_op* op) noexcept { push_raw(reinterpret_cast<char*>(op) + 1); }
    // The next entry: a handle, an op (is_op) or null (removed).
    [[nodiscard]] void* pop() noexcept { return m_buf[m_head++ & (m_capacity - 1)]; }
    [[nodiscard]] static bool is_op(const void* e) noexcept {
        return (reinterpret_cast<std::uintptr_t>(e) & 1) != 0;
    }
    [[nodiscard]] static io_op* as_op(void* e) noexcept {
        return reinterpret_cast<io_op*>(static_cast<char*>(e) - 1);
    }
    // Nulls out `op`'s entry, if queued (an op whose frame is going away).
    void remove_op(io_op* op) noexcept;
    // Permute the first n entries at random (event_loop::set_shuffle_seed).
    void shuffle_front(std::size_t n, std::uint64_t& state) noexcept;
    [[nodiscard]] bool empty() const noexcept { return m_head == m_tail; }
    [[nodiscard]] std::size_t size() const noexcept { return m_tail - m_head; }

private:
    void push_raw(void* e) noexcept {
        if (m_tail - m_head == m_capacity) {
            grow();
        }
        m_buf[m_tail++ & (m_capacity - 1)] = e;
    }
    void grow() noexcept; // doubles; out of memory: a message and abort()

    std::unique_ptr<void*[]> m_buf;
    std::size_t m_capacity = 0;
    std::size_t m_head = 0;
    std::size_t m_tail = 0;
};

// Symmetric transfers in a row before the guard sends the next one through the
// ready queue. Neither g++ 12 (-O0..-O1) nor clang 14 (-Og and up, ping-pong)
// reliably compiles the resume of a returned handle as a tail call
// (llvm/llvm-project#49888, jbaldwin/libcoro#273), so each transfer may cost a
// stack frame. 64 bounds that to a few tens of KiB even at -O0 under ASan, and
// costs one queue round trip per 64 transfers when tail calls do happen.
inline constexpr std::uint32_t max_transfer_depth = 64;

// Operations that complete without suspending, in a row, before the task is
// requeued so that others get to run (tokio's coop budget; libuv drains its
// pending queue a bounded number of times per iteration).
inline constexpr std::int32_t inline_budget = 128;

class loop_core {
public:
    explicit loop_core(event_loop& owner) noexcept : m_owner(&owner) {}
    loop_core(const loop_core&) = delete;
    loop_core& operator=(const loop_core&) = delete;

    [[nodiscard]] event_loop& owner() const noexcept { return *m_owner; }

    // Queue `h` to be resumed by the loop (never resumes it here).
    void post(std::coroutine_handle<> h) noexcept { m_ready.push(h); }

    // Called by the loop before it resumes a handle from the ready queue: the
    // stack is back at the loop, so the chain may grow again.
    void reset_guards() noexcept {
        m_depth = 0;
        m_budget = inline_budget;
    }
    // Spend one unit of the inline budget; false means "yield now".
    bool take_budget() noexcept { return --m_budget > 0; }

    // I/O (lib/backend/backend.hpp has the contract). submit: true if the op
    // finished inline (result set, the waiter is not posted); otherwise the
    // loop resumes op.m_waiter once it completes.
    bool submit(io_op& op);
    // Ask an in-flight op to finish early; its completion still comes.
    void cancel(io_op& op) noexcept;
    // Cancel and wait until the backend and the kernel are done with the op;
    // nothing is delivered. For frames destroyed mid-await (loop teardown).
    void forget(io_op& op) noexcept;
    // Close an fd the backend may track; its in-flight ops complete cancelled.
    void close_fd(int fd) noexcept;

    void add_timer(timer_node& t);
    void remove_timer(timer_node& t) noexcept;

    // Resources closed when run_until_complete ends (loop_resource.hpp).
    void attach(loop_resource& r) noexcept;
    void detach(loop_resource& r) noexcept;

    // Work outside the loop (a thread-pool job) that will come back through
    // call_soon_threadsafe: while any is outstanding, a loop with nothing else
    // to do waits instead of reporting that nothing can ever happen.
    // `hand_off`: a task parked on a hand-off from another thread or loop
    // (remote_waiter: channel, spawn, futures) rather than a job of this
    // loop's own on another thread (to_thread): paused time waits for the
    // latter only (event_loop::pause_time).
    void external_begin(bool hand_off = false) noexcept;
    void external_end(bool hand_off = false) noexcept;

    // The loop's exception handler (event_loop::call_exception_handler).
    void report(const exception_context& ctx) noexcept;

    // Start a root coroutine (detail/root.hpp) as a task of this loop, with
    // no task_handle: the loop owns its frame (create_task without a handle,
    // for library code whose coroutine is itself the root - a server's
    // connection task, say - so it costs one frame instead of two).
    void spawn(root_base& r);

    ready_queue m_ready;
    std::uint32_t m_depth = 0;
    std::int32_t m_budget = inline_budget;
    loop_impl* m_impl = nullptr; // set by event_loop
    event_loop* m_owner;
};

// The handle an awaiter should return from await_suspend to switch to `next`.
// Past max_transfer_depth the switch goes through the ready queue instead, and
// the stack unwinds to the loop.
inline std::coroutine_handle<> transfer(loop_core* loop, std::coroutine_handle<> next) noexcept {
    if (loop == nullptr || ++loop->m_depth < max_transfer_depth) {
        return next;
    }
    loop->post(next);
    return std::noop_coroutine();
}

// The handle of the loop running on this thread; throws std::logic_error if
// none (lib/event_loop.cpp). For awaiters of coroutines that are not coio's.
loop_core& running_loop_core();

// The handle of the promise's loop, or of the running loop for a foreign
// coroutine (whose promise carries none).
inline loop_core& core_or_running(loop_core* from_promise) {
    return from_promise != nullptr ? *from_promise : running_loop_core();
}

} // namespace coio::detail
