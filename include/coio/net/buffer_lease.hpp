// coio/net/buffer_lease.hpp - a read buffer lent by the event loop's pool.
//
//   coio::chunk_result r = co_await sock.read_chunk();
//   if (r) { use(r.data.view()); }   // the buffer goes back when r.data dies
//
// socket::read_chunk() returns one: the backend picked the buffer (io_uring:
// a provided-buffer ring; epoll/kqueue: the loop's pool, taken only once the
// socket is readable), so a connection waiting for data holds no buffer.
//
// Ownership: the lease owns the bytes until it is destroyed, reset() or moved
// from; then the buffer returns to the pool and the view is gone. Move-only.
// Lifetime: a lease belongs to the loop that lent it. End it on that loop's
// thread and before that loop is destroyed (the pool dies with the loop);
// don't keep it across run() calls. While leases are held the pool lends
// others (it grows up to its limit); a program that holds every buffer
// of the pool makes further read_chunk calls wait until one comes back.
#pragma once

#include <coio/detail/io_op.hpp>

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <utility>

namespace coio {

class buffer_lease {
public:
    buffer_lease() noexcept = default;
    // For awaiters: take over buffer `id` of `pool` holding `size` bytes.
    buffer_lease(detail::buffer_pool* pool, std::uint32_t id, const char* data,
                 std::size_t size) noexcept
        : m_pool(pool), m_data(data), m_size(size), m_id(id) {}
    buffer_lease(buffer_lease&& o) noexcept
        : m_pool(std::exchange(o.m_pool, nullptr)), m_data(std::exchange(o.m_data, nullptr)),
          m_size(std::exchange(o.m_size, 0)), m_id(o.m_id) {}
    buffer_lease& operator=(buffer_lease&& o) noexcept {
        if (this != &o) {
            reset();
            m_pool = std::exchange(o.m_pool, nullptr);
            m_data = std::exchange(o.m_data, nullptr);
            m_size = std::exchange(o.m_size, 0);
            m_id = o.m_id;
        }
        return *this;
    }
    buffer_lease(const buffer_lease&) = delete;
    buffer_lease& operator=(const buffer_lease&) = delete;
    ~buffer_lease() { reset(); }

    // The bytes not yet removed with remove_prefix().
    [[nodiscard]] const char* data() const noexcept { return m_data; }
    [[nodiscard]] std::size_t size() const noexcept { return m_size; }
    [[nodiscard]] bool empty() const noexcept { return m_size == 0; }
    [[nodiscard]] std::string_view view() const noexcept { return {m_data, m_size}; }
    [[nodiscard]] std::span<const std::byte> bytes() const noexcept {
        return std::as_bytes(std::span(m_data, m_size));
    }
    // Holds a buffer (a moved-from or default lease does not).
    explicit operator bool() const noexcept { return m_pool != nullptr; }

    // Drop n bytes from the front; the buffer stays leased until reset().
    void remove_prefix(std::size_t n) noexcept {
        n = n < m_size ? n : m_size;
        m_data += n;
        m_size -= n;
    }
    // Give the buffer back now.
    void reset() noexcept {
        if (m_pool != nullptr) {
            std::exchange(m_pool, nullptr)->release_buffer(m_id);
        }
        m_data = nullptr;
        m_size = 0;
    }

private:
    detail::buffer_pool* m_pool = nullptr;
    const char* m_data = nullptr;
    std::size_t m_size = 0;
    std::uint32_t m_id = 0;
};

} // namespace coio
