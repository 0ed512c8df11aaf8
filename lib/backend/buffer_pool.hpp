// lib/backend/buffer_pool.hpp - the loop's read buffers for recv_pooled
// (socket::read_chunk, the streams).
//
// Rules (every backend):
//  - A socket waiting for data holds no buffer. The backend takes one when data
//    is there (readiness backends: for the recv itself, at the op's turn in
//    the ready queue; io_uring: the kernel picks one from a provided ring) and
//    lends it with the completion (io_op's m_arg.lent); the receiver gives it
//    back with release_buffer(id), on the loop's thread, before the loop ends.
//  - Two sizes. Reads start with a small buffer (4 KiB: a 64-byte message
//    touches one page); a socket whose read filled one gets big buffers
//    (64 KiB) until a read returns less than a small buffer holds, so bulk
//    transfers and pipelined requests cost one read per 64 KiB, as a raw loop
//    with a 64 KiB buffer does, and idle ones stay small. If no big buffer is
//    free the read takes a small one: big buffers are an optimisation, never
//    a reason to wait.
//  - Memory follows demand. Buffers are mapped in slabs when first needed and
//    kept while they are used; what is mapped beyond the most lent at once
//    during the last trim period (about a second) is unmapped at the next
//    trim, so a steady load never maps or unmaps (no page faults, no
//    mmap/munmap per request) and memory goes back within seconds when the
//    load falls. The lowest free buffer is lent first, so use concentrates
//    in the first slabs and the last ones empty out.
//  - A buffer's id says which pool and slab it is in (ids are small and dense,
//    which io_uring's 16-bit buffer ids need).
#pragma once

#include <coio/detail/io_op.hpp>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace coio::detail {

inline constexpr std::size_t small_buffer_size = 4096;
inline constexpr std::size_t big_buffer_size = 64 * 1024;
// Ids of big buffers carry this bit; small ones don't.
inline constexpr std::uint32_t big_buffer_bit = 1U << 30;

// How long demand is watched before memory beyond it goes back: 1 s, or
// COIO_POOL_TRIM_MS (a test knob). Read when a loop is made.
std::chrono::nanoseconds pool_trim_period() noexcept;

// The most small buffers a loop's pool may lend: COIO_POOL_BUFFERS (a test
// knob, rounded up to a power of two, at least 64), else 4096 (16 MiB).
std::uint32_t pool_max_buffers() noexcept;
// The most big buffers: a quarter of that count, at least 16 (16 MiB).
std::uint32_t pool_max_big_buffers() noexcept;

// Slabs of equal buffers mapped with mmap; ids are slab * per_slab + index.
class buffer_slabs {
public:
    buffer_slabs(std::size_t buffer_size, std::uint32_t per_slab,
                 std::uint32_t max_buffers) noexcept
        : m_size(buffer_size), m_per_slab(per_slab), m_max(max_buffers) {}
    buffer_slabs(const buffer_slabs&) = delete;
    buffer_slabs& operator=(const buffer_slabs&) = delete;
    ~buffer_slabs();

    // Maps one more slab. False at the limit or if mmap fails.
    bool add_slab() noexcept;
    // Unmaps the last slab.
    void drop_last_slab() noexcept;
    // Returns the pages of slab `s` to the system; they read as zero later.
    void discard_slab(std::size_t s) noexcept;
    // Forgets every slab without unmapping it (leaks them on purpose).
    void abandon() noexcept { m_slabs.clear(); }
    [[nodiscard]] char* data(std::uint32_t id) const noexcept {
        return m_slabs[id / m_per_slab] + (id % m_per_slab) * m_size;
    }
    [[nodiscard]] std::uint32_t count() const noexcept {
        return static_cast<std::uint32_t>(m_slabs.size()) * m_per_slab;
    }
    [[nodiscard]] std::size_t slabs() const noexcept { return m_slabs.size(); }
    [[nodiscard]] std::uint32_t per_slab() const noexcept { return m_per_slab; }
    [[nodiscard]] std::uint32_t max_buffers() const noexcept { return m_max; }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return m_size; }

private:
    std::vector<char*> m_slabs;
    std::size_t m_size;
    std::uint32_t m_per_slab;
    std::uint32_t m_max;
};

// A pool that lends the lowest free buffer of one size. Used by the readiness
// backends, and by io_uring where it has no buffer ring.
class buffer_freelist {
public:
    buffer_freelist(std::size_t buffer_size, std::uint32_t max_buffers) noexcept;

    // A buffer id, or -1 if all max_buffers are lent (or mmap failed).
    std::int64_t take() noexcept;
    void give_back(std::uint32_t id) noexcept;
    [[nodiscard]] char* data(std::uint32_t id) const noexcept { return m_slabs.data(id); }
    [[nodiscard]] std::size_t out() const noexcept { return m_out; }
    [[nodiscard]] std::size_t mapped_slabs() const noexcept { return m_slabs.slabs(); }
    [[nodiscard]] std::size_t mapped_bytes() const noexcept {
        return m_slabs.slabs() * m_slabs.per_slab() * m_slabs.buffer_size();
    }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return m_slabs.buffer_size(); }

    // Unmaps the free slabs at the end beyond what the most lent at once
    // since the last trim needed (plus one slab of headroom). True if slabs
    // are still mapped beyond what is lent now: a later trim may free them.
    bool trim() noexcept;
    // A slab was mapped since the last trim.
    [[nodiscard]] bool grew() const noexcept { return m_grew; }

private:
    buffer_slabs m_slabs;
    std::vector<std::uint64_t> m_free; // per slab, bit i: buffer i is free
    std::size_t m_out = 0;
    std::size_t m_peak = 0; // most lent at once since the last trim
    std::size_t m_hint = 0; // no free buffer in slabs below this one
    bool m_grew = false;
};

// The small and big pools of a readiness backend, and when to trim them.
class read_buffers {
public:
    read_buffers() noexcept;

    // A buffer for one recv: big if asked and one is free, else small.
    // Returns the id (with big_buffer_bit for a big one) or -1.
    std::int64_t take(bool big) noexcept;
    void give_back(std::uint32_t id) noexcept;
    [[nodiscard]] char* data(std::uint32_t id) const noexcept;
    [[nodiscard]] static std::size_t size_of(std::uint32_t id) noexcept {
        return (id & big_buffer_bit) != 0 ? big_buffer_size : small_buffer_size;
    }
    [[nodiscard]] std::size_t out() const noexcept { return m_small.out() + m_big.out(); }
    [[nodiscard]] std::size_t bytes() const noexcept {
        return m_small.mapped_bytes() + m_big.mapped_bytes();
    }

    // Trims both pools once per pool_trim_period; returns how long a wait
    // may last before the next trim is due (negative: nothing to trim).
    std::chrono::nanoseconds maintain(std::chrono::steady_clock::time_point now) noexcept;

private:
    buffer_freelist m_small;
    buffer_freelist m_big;
    std::chrono::nanoseconds m_trim_period; // pool_trim_period(), read once
    std::chrono::steady_clock::time_point m_last_trim{};
    bool m_excess = false; // mapped beyond what is lent: worth another trim
};

// recv_pooled (and read_pooled, with read(2)) for the readiness backends:
// recv into a buffer taken now and given back at once unless data came. Returns the byte count, 0
// at EOF or -errno (-EAGAIN: nothing there; -ENOBUFS: every buffer is lent). On success
// op.m_arg.lent carries the lease; `owner` takes the buffer back.
int recv_into_pool(io_op& op, read_buffers& pool, buffer_pool& owner, bool big) noexcept;

} // namespace coio::detail
