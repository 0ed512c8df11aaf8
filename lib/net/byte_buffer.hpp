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

} // namespace coio::detail
