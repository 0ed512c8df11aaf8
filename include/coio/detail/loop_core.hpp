// coio/detail/loop_core.hpp - the part of the event loop that awaiters touch on
// every switch: the ready queue and the stack-depth guard. Kept inline and
// free of OS types so that a resume costs a few loads and stores.
#pragma once

#include <coroutine>
#include <cstddef>
#include <cstdint>
#include <memory>

namespace coio::detail {

// FIFO of coroutine handles waiting to run: a power-of-two ring that grows.
class ready_queue {
public:
    ready_queue() = default;
    ready_queue(const ready_queue&) = delete;
    ready_queue& operator=(const ready_queue&) = delete;

    void push(std::coroutine_handle<> h) noexcept {
        if (m_tail - m_head == m_capacity) {
            grow();
        }
        m_buf[m_tail++ & (m_capacity - 1)] = h;
    }
    std::coroutine_handle<> pop() noexcept { return m_buf[m_head++ & (m_capacity - 1)]; }
    [[nodiscard]] bool empty() const noexcept { return m_head == m_tail; }
    [[nodiscard]] std::size_t size() const noexcept { return m_tail - m_head; }

private:
    void grow() noexcept; // doubles; terminates on allocation failure

    std::unique_ptr<std::coroutine_handle<>[]> m_buf;
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

struct loop_core {
    ready_queue m_ready;
    std::uint32_t m_depth = 0;
    std::int32_t m_budget = inline_budget;

    void post(std::coroutine_handle<> h) noexcept { m_ready.push(h); }

    // Called by the loop before it resumes a handle from the ready queue: the
    // stack is back at the loop, so the chain may grow again.
    void reset_guards() noexcept {
        m_depth = 0;
        m_budget = inline_budget;
    }

    // Spend one unit of the inline budget; false means "yield now".
    bool take_budget() noexcept { return --m_budget > 0; }
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

} // namespace coio::detail
