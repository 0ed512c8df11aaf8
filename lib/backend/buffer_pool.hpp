// lib/backend/buffer_pool.hpp - the loop's read buffers for recv_pooled.
//
// Buffers are pool_buffer_size bytes, in slabs of pool_slab_buffers mapped
// with mmap when first needed and unmapped when no longer needed, so that
// memory goes back to the system after a burst (malloc would keep it). A
// buffer's id is slab * pool_slab_buffers + index; ids are small and dense,
// which the io_uring buffer ring needs (16-bit buffer ids).
//
// Sizes: 4 KiB buffers (one page; a 64-byte message touches one page), at
// most COIO_POOL_BUFFERS (default 4096, i.e. 16 MiB) per loop. Readiness
// backends hold a buffer only from the recv that fills it to the end of the
// lease, so what they keep mapped is the most they lent at once (bounded by
// the events of one wait) plus pool_keep_slabs slabs.
#pragma once

#include <coio/detail/io_op.hpp>

#include <cstddef>
#include <cstdint>
#include <vector>

namespace coio::detail {

inline constexpr std::size_t pool_buffer_size = 4096;
inline constexpr std::uint32_t pool_slab_buffers = 64;
// Slabs kept mapped even when free (512 KiB), so that a steady load with up to
// 128 reads completing per wait never maps or unmaps; beyond that a slab is
// mapped and unmapped at most once per wait, for 64 or more reads.
inline constexpr std::size_t pool_keep_slabs = 2;

// The most buffers a loop's pool may lend: COIO_POOL_BUFFERS (a test knob,
// rounded up to a power of two, at least 64), else 4096.
std::uint32_t pool_max_buffers() noexcept;

// Slabs of buffers; ids as above.
class buffer_slabs {
public:
    explicit buffer_slabs(std::uint32_t max_buffers) noexcept : m_max(max_buffers) {}
    buffer_slabs(const buffer_slabs&) = delete;
    buffer_slabs& operator=(const buffer_slabs&) = delete;
    ~buffer_slabs();

    // Maps one more slab. False at the limit or if mmap fails.
    bool add_slab() noexcept;
    // Unmaps the last slab.
    void drop_last_slab() noexcept;
    // Forgets every slab without unmapping it (leaks them on purpose).
    void abandon() noexcept { m_slabs.clear(); }
    [[nodiscard]] char* data(std::uint32_t id) const noexcept {
        return m_slabs[id / pool_slab_buffers] + (id % pool_slab_buffers) * pool_buffer_size;
    }
    [[nodiscard]] std::uint32_t count() const noexcept {
        return static_cast<std::uint32_t>(m_slabs.size()) * pool_slab_buffers;
    }
    [[nodiscard]] std::size_t slabs() const noexcept { return m_slabs.size(); }
    [[nodiscard]] std::uint32_t max_buffers() const noexcept { return m_max; }

private:
    std::vector<char*> m_slabs;
    std::uint32_t m_max;
};

// A pool that lends the lowest free buffer, so that use concentrates in the
// first slabs and the last ones empty out; an empty last slab is unmapped
// while more than pool_keep_slabs slabs are mapped. Used by epoll, kqueue
// and io_uring without a buffer ring.
class buffer_freelist {
public:
    explicit buffer_freelist(std::uint32_t max_buffers) noexcept : m_slabs(max_buffers) {}

    // A buffer id, or -1 if all max_buffers are lent (or mmap failed).
    std::int64_t take() noexcept;
    void give_back(std::uint32_t id) noexcept;
    [[nodiscard]] char* data(std::uint32_t id) const noexcept { return m_slabs.data(id); }
    [[nodiscard]] std::size_t out() const noexcept { return m_out; }
    [[nodiscard]] std::size_t mapped_slabs() const noexcept { return m_slabs.slabs(); }

private:
    buffer_slabs m_slabs;
    std::vector<std::uint64_t> m_free; // per slab, bit i: buffer i is free
    std::size_t m_out = 0;
    std::size_t m_hint = 0; // no free buffer in slabs below this one
};

// recv_pooled for the readiness backends: recv into a buffer taken now, and
// given back at once unless data came. Returns the byte count, 0 at EOF or
// -errno (-EAGAIN: nothing there; -ENOBUFS: the pool is exhausted). On
// success op carries the lease (io_op.hpp); `owner` takes it back.
int recv_into_pool(io_op& op, buffer_freelist& pool, buffer_pool& owner) noexcept;

} // namespace coio::detail
