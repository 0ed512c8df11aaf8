// lib/backend/uring_ring.cpp - one provided-buffer ring (uring_backend.hpp,
// uring_buffer_ring): its registration, growth and compaction.
//
// liburing 2.3 has no io_uring_setup_buf_ring, so the ring is mmap'd here and
// registered with io_uring_register_buf_ring. Its capacity is the most buffers
// it may ever provide (a power of two, at most 32768); how many it provides
// moves with demand, a slab at a time:
//  - grow() maps a slab more and puts its buffers into the ring;
//  - compact() takes the ring back: it unregisters the buffer group - the
//    kernel then holds none of the buffers that were in the ring (a multishot
//    selects its buffer only when data comes, from whatever ring the group has
//    then; with the loop's single issuer nothing runs in between) - unmaps the
//    slabs beyond what is needed, and registers the ring again (same group)
//    with the buffers that stay and are not out. Armed multishot recvs go on
//    with the new ring. A buffer that is out (lent, queued) is never touched:
//    its slab stays.
// The kernel takes buffers in ring order, so every provided buffer is touched
// sooner or later: what a ring costs in memory is what it provides, which is
// why it gives slabs back when the load falls.
#include "backend/uring_backend.hpp"

#include <sys/mman.h>

#include <bit>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace coio::detail {

uring_buffer_ring::uring_buffer_ring(std::size_t buffer_size, std::uint16_t group,
                                     std::uint32_t max_buffers) noexcept
    : m_slabs(buffer_size, buffer_size >= big_buffer_size ? 16 : 64, max_buffers), m_group(group) {}

uring_buffer_ring::~uring_buffer_ring() {
    if (m_br != nullptr) {
        ::munmap(m_br, m_ring_bytes);
    }
}

int uring_buffer_ring::setup(io_uring& ring) noexcept {
    const std::uint32_t entries = std::bit_ceil(m_slabs.max_buffers()); // <= 32768
    try {
        m_is_out.assign(m_slabs.max_buffers(), 0);
    } catch (...) {
        return -ENOMEM;
    }
    m_ring_bytes = entries * sizeof(io_uring_buf);
    void* p =
        ::mmap(nullptr, m_ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    m_br = static_cast<io_uring_buf_ring*>(p);
    if (const int r = register_ring(ring); r < 0) {
        ::munmap(p, m_ring_bytes);
        m_br = nullptr;
        return r;
    }
    return 0;
}

int uring_buffer_ring::register_ring(io_uring& ring) noexcept {
    io_uring_buf_ring_init(m_br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(m_br);
    reg.ring_entries = static_cast<std::uint32_t>(m_ring_bytes / sizeof(io_uring_buf));
    reg.bgid = m_group;
    return io_uring_register_buf_ring(&ring, &reg, 0);
}

void uring_buffer_ring::teardown(io_uring& ring) noexcept {
    if (m_br != nullptr) {
        (void)io_uring_unregister_buf_ring(&ring, m_group);
        ::munmap(m_br, m_ring_bytes);
        m_br = nullptr;
    }
    while (m_slabs.slabs() > 0) {
        m_slabs.drop_last_slab();
    }
    m_out = 0;
}

void uring_buffer_ring::abandon() noexcept {
    m_br = nullptr;
    m_slabs.abandon();
}

void uring_buffer_ring::add(std::uint32_t id) noexcept {
    const int mask =
        io_uring_buf_ring_mask(static_cast<std::uint32_t>(m_ring_bytes / sizeof(io_uring_buf)));
    io_uring_buf_ring_add(m_br, m_slabs.data(id), static_cast<unsigned>(m_slabs.buffer_size()),
                          static_cast<unsigned short>(id), mask, 0);
    io_uring_buf_ring_advance(m_br, 1);
}

bool uring_buffer_ring::grow() noexcept {
    if (m_br == nullptr || !m_slabs.add_slab()) {
        return false;
    }
    const std::uint32_t per = m_slabs.per_slab();
    for (std::uint32_t id = m_slabs.count() - per; id < m_slabs.count(); ++id) {
        add(id);
    }
    return true;
}

void uring_buffer_ring::give_back(std::uint32_t id) noexcept {
    m_is_out[id] = 0;
    --m_out;
    add(id);
}

bool uring_buffer_ring::compact(io_uring& ring, std::uint32_t keep) noexcept {
    const std::uint32_t per = m_slabs.per_slab();
    std::uint32_t needed = keep;
    for (std::uint32_t id = m_slabs.count(); id > needed; --id) {
        if (m_is_out[id - 1] != 0) {
            needed = id; // that slab holds a buffer someone has
            break;
        }
    }
    const std::size_t slabs = (needed + per - 1) / per;
    if (m_br == nullptr || slabs >= m_slabs.slabs()) {
        return false;
    }
    if (io_uring_unregister_buf_ring(&ring, m_group) < 0) {
        return false;
    }
    while (m_slabs.slabs() > slabs) {
        m_slabs.drop_last_slab();
    }
    if (const int r = register_ring(ring); r < 0) {
        // Only if the kernel is out of memory: without a ring every socket
        // would starve for good, so stop loudly rather than hang.
        std::fprintf(stderr, "coio: io_uring: cannot register the buffer ring again: %s\n",
                     std::strerror(-r));
        std::abort();
    }
    for (std::uint32_t id = 0; id < m_slabs.count(); ++id) {
        if (m_is_out[id] == 0) {
            add(id);
        }
    }
    return true;
}

} // namespace coio::detail
