// lib/backend/fd_table.hpp - the per-fd state both readiness backends keep
// (epoll.cpp, kqueue.cpp): the operation parked in each direction, indexed by
// fd and grown on demand, and the FIFO of readers starved of pool buffers.
//
// Entry is the backend's own per-fd struct; it needs `io_op* reader`,
// `io_op* writer` and `bool starved` (true while the fd is in the FIFO).
#pragma once

#include "backend/backend.hpp"

#include <algorithm>
#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <utility>
#include <vector>

namespace coio::detail {

template <class Entry>
class fd_table {
public:
    // fd's entry, growing the table (doubling) if needed. fd >= 0.
    Entry& slot_for(int fd) {
        auto i = static_cast<std::size_t>(fd);
        if (i >= m_table.size()) {
            m_table.resize(std::max<std::size_t>(i + 1, m_table.size() * 2));
        }
        return m_table[i];
    }
    // fd's entry, or null if the table never reached it.
    [[nodiscard]] Entry* find(std::size_t fd) noexcept {
        return fd < m_table.size() ? &m_table[fd] : nullptr;
    }
    [[nodiscard]] Entry* find(int fd) noexcept {
        return fd < 0 ? nullptr : find(static_cast<std::size_t>(fd));
    }

    // Takes `op` off its fd if it is parked there; false if it is not.
    bool unpark(io_op& op) noexcept {
        Entry* e = find(op.m_fd);
        if (e == nullptr) {
            return false;
        }
        for (io_op** slot : {&e->reader, &e->writer}) {
            if (*slot == &op) {
                *slot = nullptr;
                return true;
            }
        }
        return false;
    }

    // Completes both parked operations of `e` as cancelled (the fd is closing)
    // and takes it out of the starved FIFO.
    void cancel_parked(Entry& e, completion_sink& sink) noexcept {
        for (io_op** slot : {&e.reader, &e.writer}) {
            if (io_op* op = std::exchange(*slot, nullptr)) {
                op->m_result = -ECANCELED;
                sink.complete(*op);
            }
        }
        e.starved = false; // its FIFO place is skipped
    }

    // fd's reader found the pool empty: queue it (once) to be retried when a
    // buffer comes back. `backend` names the backend in the out-of-memory abort.
    void starve(int fd, Entry& e, const char* backend) noexcept {
        if (e.starved) {
            return;
        }
        try {
            m_starved.push_back(fd);
        } catch (...) {
            std::fprintf(stderr, "coio: %s: out of memory queueing a starved reader\n", backend);
            std::abort();
        }
        e.starved = true;
    }

    // A pool buffer came back: starved readers try again, the longest-waiting
    // first, until one does not find the socket empty (it took the buffer, or
    // starved again). retry(entry) tries the entry's reader and returns the
    // result, -EAGAIN if the socket had nothing.
    template <class Retry>
    void retry_starved(Retry retry) noexcept {
        while (m_starved_head < m_starved.size()) {
            Entry& e = m_table[static_cast<std::size_t>(m_starved[m_starved_head++])];
            if (!e.starved) {
                continue; // closed since
            }
            e.starved = false;
            if (e.reader != nullptr && e.reader->m_code == op_code::recv_pooled &&
                retry(e) != -EAGAIN) {
                break;
            }
        }
        if (m_starved_head == m_starved.size()) {
            m_starved.clear();
            m_starved_head = 0;
        }
    }

private:
    std::vector<Entry> m_table;
    std::vector<int> m_starved; // fds whose reader waits for a pool buffer, FIFO
    std::size_t m_starved_head = 0;
};

} // namespace coio::detail
