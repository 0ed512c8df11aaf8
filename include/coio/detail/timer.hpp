// coio/detail/timer.hpp - an entry in the loop's timer heap.
//
// The node lives inside the awaiter that waits for it (so, in the waiting
// coroutine's frame): adding a timer allocates nothing. The heap keeps the
// node's index so that removal is O(log n).
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>

namespace coio::detail {

struct timer_node {
    using time_point = std::chrono::steady_clock::time_point;
    static constexpr std::size_t not_queued = ~std::size_t{0};

    time_point m_deadline{};
    std::uint64_t m_seq = 0;                        // orders equal deadlines first-in, first-out
    std::size_t m_index = not_queued;               // position in the heap, or not_queued
    void (*m_fire)(timer_node&) noexcept = nullptr; // called by the loop when due
    void* m_ctx = nullptr;                          // for m_fire

    [[nodiscard]] bool queued() const noexcept { return m_index != not_queued; }
};

} // namespace coio::detail
