// lib/loop_shuffle.cpp - the seeded shuffle of the ready queue
// (event_loop::set_shuffle_seed, COIO_SHUFFLE_SEED; RELIABILITY 37): the
// handles and I/O ops that are ready when phase 4 of an iteration begins run
// in an order drawn from the seed instead of FIFO. The entries are permuted
// in place, so the queue stays their only owner (an op forgotten meanwhile is
// still found and blanked by remove_op).
#include "loop_impl.hpp"

#include <cstdint>
#include <cstdlib>
#include <utility>

namespace coio {

namespace detail {

namespace {
// splitmix64: a full-period 64-bit generator, small and good enough here.
std::uint64_t next_random(std::uint64_t& state) noexcept {
    std::uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}
} // namespace

void ready_queue::shuffle_front(std::size_t n, std::uint64_t& state) noexcept {
    // Fisher-Yates over [m_head, m_head + n).
    for (std::size_t i = n; i > 1; --i) {
        const std::size_t j = static_cast<std::size_t>(next_random(state) % i);
        std::swap(m_buf[(m_head + i - 1) & (m_capacity - 1)],
                  m_buf[(m_head + j) & (m_capacity - 1)]);
    }
}

std::uint64_t shuffle_seed_from_env() noexcept {
    const char* v = std::getenv("COIO_SHUFFLE_SEED");
    if (v == nullptr || *v == '\0') {
        return 0;
    }
    return std::strtoull(v, nullptr, 10);
}

} // namespace detail

void event_loop::set_shuffle_seed(std::uint64_t seed) noexcept {
    m_impl->m_shuffle_seed = seed;
    m_impl->m_shuffle_state = seed;
}

std::uint64_t event_loop::shuffle_seed() const noexcept {
    return m_impl->m_shuffle_seed;
}

} // namespace coio
