// lib/backend/buffer_pool.cpp - slabs, the free-list pools and their trimming
// (buffer_pool.hpp).
#include "backend/buffer_pool.hpp"

#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <bit>
#include <cerrno>
#include <cstdlib>

namespace coio::detail {

namespace {
constexpr std::uint32_t small_per_slab = 64; // 256 KiB
constexpr std::uint32_t big_per_slab = 16;   // 1 MiB

std::uint64_t full_mask(std::uint32_t per_slab) noexcept {
    return per_slab == 64 ? ~std::uint64_t{0} : (std::uint64_t{1} << per_slab) - 1;
}
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
    return std::max(small_per_slab, std::bit_ceil(static_cast<std::uint32_t>(n)));
}

std::uint32_t pool_max_big_buffers() noexcept {
    return std::max<std::uint32_t>(big_per_slab, pool_max_buffers() / 16);
}

std::chrono::nanoseconds pool_trim_period() noexcept {
    const char* v = std::getenv("COIO_POOL_TRIM_MS");
    const unsigned long ms = v != nullptr ? std::strtoul(v, nullptr, 10) : 0;
    return std::chrono::milliseconds(ms > 0 && ms < 3'600'000 ? ms : 1000);
}

buffer_slabs::~buffer_slabs() {
    while (!m_slabs.empty()) {
        drop_last_slab();
    }
}

bool buffer_slabs::add_slab() noexcept {
    if (count() + m_per_slab > m_max) {
        return false;
    }
    void* p = ::mmap(nullptr, m_size * m_per_slab, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return false;
    }
    try {
        m_slabs.push_back(static_cast<char*>(p));
    } catch (...) {
        ::munmap(p, m_size * m_per_slab);
        return false;
    }
    return true;
}

void buffer_slabs::drop_last_slab() noexcept {
    ::munmap(m_slabs.back(), m_size * m_per_slab);
    m_slabs.pop_back();
}

void buffer_slabs::discard_slab(std::size_t s) noexcept {
    ::madvise(m_slabs[s], m_size * m_per_slab, MADV_DONTNEED);
}

buffer_freelist::buffer_freelist(std::size_t buffer_size, std::uint32_t max_buffers) noexcept
    : m_slabs(buffer_size, buffer_size >= big_buffer_size ? big_per_slab : small_per_slab,
              max_buffers) {}

std::int64_t buffer_freelist::take() noexcept {
    const std::uint32_t per = m_slabs.per_slab();
    std::size_t s = m_hint;
    while (s < m_free.size() && m_free[s] == 0) {
        ++s;
    }
    if (s == m_free.size()) {
        if (!m_slabs.add_slab()) {
            return -1;
        }
        try {
            m_free.push_back(full_mask(per));
        } catch (...) {
            m_slabs.drop_last_slab();
            return -1;
        }
        m_grew = true;
    }
    const auto i = static_cast<std::uint32_t>(std::countr_zero(m_free[s]));
    m_free[s] &= m_free[s] - 1;
    m_hint = s;
    m_peak = std::max(m_peak, ++m_out);
    return static_cast<std::int64_t>(s * per + i);
}

void buffer_freelist::give_back(std::uint32_t id) noexcept {
    const std::uint32_t per = m_slabs.per_slab();
    const std::size_t s = id / per;
    m_free[s] |= std::uint64_t{1} << (id % per);
    --m_out;
    m_hint = std::min(m_hint, s);
}

bool buffer_freelist::trim() noexcept {
    const std::uint32_t per = m_slabs.per_slab();
    const std::size_t keep = (m_peak + per - 1) / per + 1; // slabs for the peak, plus one
    const std::uint64_t full = full_mask(per);
    while (m_free.size() > keep && m_free.back() == full) {
        m_free.pop_back();
        m_slabs.drop_last_slab();
    }
    m_hint = std::min(m_hint, m_free.size());
    m_peak = m_out;
    m_grew = false;
    return m_free.size() > (m_out + per - 1) / per + 1;
}

read_buffers::read_buffers() noexcept
    : m_small(small_buffer_size, pool_max_buffers()),
      m_big(big_buffer_size, pool_max_big_buffers()), m_trim_period(pool_trim_period()) {}

std::int64_t read_buffers::take(bool big) noexcept {
    if (big) {
        const std::int64_t id = m_big.take();
        if (id >= 0) {
            return id | big_buffer_bit;
        }
    }
    return m_small.take();
}

void read_buffers::give_back(std::uint32_t id) noexcept {
    if ((id & big_buffer_bit) != 0) {
        m_big.give_back(id & ~big_buffer_bit);
    } else {
        m_small.give_back(id);
    }
}

char* read_buffers::data(std::uint32_t id) const noexcept {
    return (id & big_buffer_bit) != 0 ? m_big.data(id & ~big_buffer_bit) : m_small.data(id);
}

std::chrono::nanoseconds
read_buffers::maintain(std::chrono::steady_clock::time_point now) noexcept {
    if (!m_excess && !m_small.grew() && !m_big.grew()) {
        return std::chrono::nanoseconds(-1); // nothing mapped since memory last matched demand
    }
    const auto since = now - m_last_trim;
    if (since < m_trim_period) {
        return m_trim_period - since;
    }
    m_last_trim = now;
    const bool small_left = m_small.trim();
    const bool big_left = m_big.trim();
    m_excess = small_left || big_left;
    return m_excess ? m_trim_period : std::chrono::nanoseconds(-1);
}

int recv_into_pool(io_op& op, read_buffers& pool, buffer_pool& owner, bool big) noexcept {
    const std::int64_t id = pool.take(big);
    if (id < 0) {
        // Every buffer lent: wait for one to come back (-ENOBUFS). None
        // lent means no memory for the first slab: none will ever come back,
        // so the read fails with ENOMEM rather than wait for ever.
        return pool.out() > 0 ? -ENOBUFS : -ENOMEM;
    }
    const auto bid = static_cast<std::uint32_t>(id);
    char* buf = pool.data(bid);
    const std::size_t size = read_buffers::size_of(bid);
    const ssize_t n = op.m_code == op_code::read_pooled ? ::read(op.m_fd, buf, size)
                                                        : ::recv(op.m_fd, buf, size, 0);
    if (n <= 0) {
        const int r = n == 0 ? 0 : -errno;
        pool.give_back(bid);
        return r;
    }
    op.m_arg.lent = io_lent{buf, &owner, bid};
    return static_cast<int>(n);
}

} // namespace coio::detail
