// lib/net/byte_buffer.hpp - a contiguous FIFO of bytes for the streams.
//
// Data lives in [m_begin, m_end) of one heap block. prepare() makes room at the
// end, moving the data to the front when that is enough and growing otherwise;
// consume() drops from the front. The block is released when the buffer empties
// and it had grown past `keep`, so an idle connection does not keep a large one.
#pragma once

#include <algorithm>
#include <cstddef>
#include <cstring>
#include <memory>
#include <span>
#include <string_view>
#include <utility>

namespace coio::detail {

class byte_buffer {
public:
    [[nodiscard]] std::size_t size() const noexcept { return m_end - m_begin; }
    [[nodiscard]] bool empty() const noexcept { return m_end == m_begin; }
    [[nodiscard]] std::size_t capacity() const noexcept { return m_cap; }
    [[nodiscard]] std::string_view view() const noexcept {
        return {m_data.get() + m_begin, size()};
    }

    void consume(std::size_t n) noexcept {
        m_begin += std::min(n, size());
        if (m_begin == m_end) {
            m_begin = m_end = 0;
        }
    }
    void clear() noexcept { m_begin = m_end = 0; }

    // Room for n more bytes at the end; commit() what was written into it.
    std::span<char> prepare(std::size_t n) {
        if (m_cap - m_end < n) {
            if (size() + n <= m_cap) {
                std::memmove(m_data.get(), m_data.get() + m_begin, size());
            } else {
                std::size_t cap = std::max(size() + n, m_cap * 2);
                auto bigger = std::make_unique_for_overwrite<char[]>(cap);
                if (size() > 0) {
                    std::memcpy(bigger.get(), m_data.get() + m_begin, size());
                }
                m_data = std::move(bigger);
                m_cap = cap;
            }
            m_end = size();
            m_begin = 0;
        }
        return {m_data.get() + m_end, n};
    }
    void commit(std::size_t n) noexcept { m_end += n; }

    void append(std::string_view s) {
        std::span<char> room = prepare(s.size());
        std::memcpy(room.data(), s.data(), s.size());
        commit(s.size());
    }

    // Free the block if the buffer is empty and larger than `keep` bytes.
    void release_if_empty(std::size_t keep) noexcept {
        if (empty() && m_cap > keep) {
            m_data.reset();
            m_cap = 0;
        }
    }

private:
    std::unique_ptr<char[]> m_data;
    std::size_t m_cap = 0;
    std::size_t m_begin = 0;
    std::size_t m_end = 0;
};

// A stream writer's unsent bytes, in two byte_buffers. A send in flight reads
// the bytes in place - epoll retries it from the same pointer after EAGAIN,
// io_uring's kernel reads them later - so while one is in flight the buffer
// it reads must not move or grow: what is written meanwhile goes to the
// second buffer, taken over once the first is sent. (Appending to the one
// buffer reallocated it under a parked send: a use-after-free that ASan
// shows, and that sent freed memory or failed with EFAULT on io_uring.)
class send_queue {
public:
    [[nodiscard]] std::size_t size() const noexcept { return m_now.size() + m_next.size(); }
    [[nodiscard]] bool empty() const noexcept { return m_now.empty() && m_next.empty(); }

    // Where new bytes go: the buffer no send is reading.
    [[nodiscard]] byte_buffer& tail() noexcept { return m_in_flight ? m_next : m_now; }
    void append(std::string_view s) { tail().append(s); }

    // The bytes to send next, in order; stable until consume() as long as
    // set_in_flight(true) was called for the send.
    [[nodiscard]] std::string_view front() noexcept {
        if (m_now.empty()) {
            std::swap(m_now, m_next); // keeps the emptied block for the next round
        }
        return m_now.view();
    }
    void set_in_flight(bool on) noexcept { m_in_flight = on; }
    void consume(std::size_t n) noexcept { m_now.consume(n); }
    void clear() noexcept {
        m_now.clear();
        m_next.clear();
    }
    // Keep at most one block of up to `keep` bytes once empty.
    void release_if_empty(std::size_t keep) noexcept {
        m_next.release_if_empty(0);
        m_now.release_if_empty(keep);
    }

private:
    byte_buffer m_now;  // sends read from its front
    byte_buffer m_next; // written while a send of m_now is in flight
    bool m_in_flight = false;
};

} // namespace coio::detail
