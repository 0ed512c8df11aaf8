// lib/backend/buffer_pool.cpp - slabs and the free-list pool (buffer_pool.hpp).
#include "backend/buffer_pool.hpp"

#include <sys/mman.h>
#include <sys/socket.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>

namespace coio::detail {

namespace {
constexpr std::size_t slab_bytes = pool_slab_buffers * pool_buffer_size;
constexpr std::uint64_t all_free = ~std::uint64_t{0};
static_assert(pool_slab_buffers == 64, "a slab's free set is one 64-bit word");
} // namespace

std::uint32_t pool_max_buffers() noexcept {
    constexpr std::uint32_t fallback = 4096;
    const char* v = std::getenv("COIO_POOL_BUFFERS");
    if (v == nullptr) {
        return fallback;
    }
    const unsigned long n = std::strtoul(v, nullptr, 10);
    if (n == 0 || n > 32768) { // 32768: the largest io_uring buffer ring
        return fallback;
    }
    return std::max(pool_slab_buffers, std::bit_ceil(static_cast<std::uint32_t>(n)));
}

buffer_slabs::~buffer_slabs() {
    while (!m_slabs.empty()) {
        drop_last_slab();
    }
}

bool buffer_slabs::add_slab() noexcept {
    if (count() + pool_slab_buffers > m_max) {
        return false;
    }
    void* p = ::mmap(nullptr, slab_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANON, -1, 0);
    if (p == MAP_FAILED) {
        return false;
    }
    try {
        m_slabs.push_back(static_cast<char*>(p));
    } catch (...) {
        ::munmap(p, slab_bytes);
        return false;
    }
    return true;
}

void buffer_slabs::drop_last_slab() noexcept {
    ::munmap(m_slabs.back(), slab_bytes);
    m_slabs.pop_back();
}

std::int64_t buffer_freelist::take() noexcept {
    for (std::size_t s = m_hint; s < m_free.size(); ++s) {
        if (m_free[s] != 0) {
            const auto i = static_cast<std::uint32_t>(std::countr_zero(m_free[s]));
            m_free[s] &= m_free[s] - 1;
            m_hint = s;
            ++m_out;
            return static_cast<std::int64_t>(s * pool_slab_buffers + i);
        }
    }
    if (!m_slabs.add_slab()) {
        return -1;
    }
    try {
        m_free.push_back(all_free);
    } catch (...) {
        m_slabs.drop_last_slab();
        return -1;
    }
    m_hint = m_free.size() - 1;
    m_free.back() &= ~std::uint64_t{1};
    ++m_out;
    return static_cast<std::int64_t>(m_hint * pool_slab_buffers);
}

void buffer_freelist::give_back(std::uint32_t id) noexcept {
    const std::size_t s = id / pool_slab_buffers;
    m_free[s] |= std::uint64_t{1} << (id % pool_slab_buffers);
    --m_out;
    m_hint = std::min(m_hint, s);
    // Unmap empty slabs at the end beyond the ones kept for steady load.
    while (m_free.size() > pool_keep_slabs && m_free.back() == all_free) {
        m_free.pop_back();
        m_slabs.drop_last_slab();
    }
    m_hint = std::min(m_hint, m_free.size());
}

int recv_into_pool(io_op& op, buffer_freelist& pool, buffer_pool& owner) noexcept {
    const std::int64_t id = pool.take();
    if (id < 0) {
        return -ENOBUFS;
    }
    const auto bid = static_cast<std::uint32_t>(id);
    char* buf = pool.data(bid);
    const ssize_t n = ::recv(op.m_fd, buf, pool_buffer_size, 0);
    if (n <= 0) {
        const int r = n == 0 ? 0 : -errno;
        pool.give_back(bid);
        return r;
    }
    op.m_buf = buf;
    op.m_len = bid;
    op.m_addr = &owner;
    return static_cast<int>(n);
}

} // namespace coio::detail
