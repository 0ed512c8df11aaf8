// lib/backend/uring_buffers.cpp - recv_pooled on io_uring: a provided-buffer
// ring and one multishot recv per socket.
//
// Buffer ring: one per loop (buffer group 0), io_uring_register_buf_ring
// (liburing 2.3 has no io_uring_setup_buf_ring, so the ring is mmap'd here).
// Its capacity is pool_max_buffers() (4096 x 4 KiB); 64 buffers (256 KiB)
// are provided when the first recv_pooled comes, and one slab of 64 more each
// time readers have been starved of buffers for 256 waits in a row, or when
// the loop would block for good with a reader starved, every buffer held by
// leases or queues and no operation in the kernel (nothing could come back). A short burst (10,000
// connections sending at once) is served in turns rather than by growing the ring for good: a
// starved socket costs one SQE to re-arm, what a single-shot recv costs anyway. Buffers are never
// unmapped before teardown: the kernel may pick any provided one. The kernel takes buffers in ring
// order, so every provided buffer is touched: the provided count, not the connection count, is what
// the ring costs in RSS.
//
// Multishot recv: the first recv_pooled on a socket arms one
// IORING_RECV_MULTISHOT recv with IOSQE_BUFFER_SELECT; it stays armed, so each
// read costs no SQE. Each CQE carries one buffer. If a reader is parked it
// gets the buffer; otherwise the buffer is queued on the socket (a FIFO linked
// through m_queue_next by buffer id, so queueing allocates nothing) and the
// next recv_pooled completes inline from the queue. A socket that queues
// queue_cap buffers (64 KiB) has its multishot cancelled, so one that nobody
// reads cannot take the ring; it is re-armed once its reader has emptied the
// queue and waits again. The multishot ends without IORING_CQE_F_MORE:
//  - EOF (res 0) or an error: recorded as the socket's end, delivered after
//    the queued data, and again to every later read;
//  - -ENOBUFS: the ring was empty. Nothing is lost (the data stays in the
//    socket); if a reader waits, the socket goes on m_starved and is re-armed
//    by wait() as buffers come back, at most one socket per free buffer;
//  - anything else (CQ overflow, a cancel we did not ask for): re-armed when
//    a reader next waits.
// Sockets read with recv_pooled hold no buffer while they wait: an armed
// multishot is a poll entry in the kernel, nothing more.
//
// Closing, cancelling, forgetting: a parked recv_pooled is not in the kernel
// (the multishot is the backend's), so cancel()/forget() just unpark it. The
// multishot's user_data is tag_recv | fd | generation; close() cancels it,
// gives the queued buffers back and bumps the generation, so later CQEs of
// the old multishot only give their buffers back and never reach a socket
// that reuses the fd number. The ring is unmapped only when no multishot is
// left in the kernel (the destructor cancels and reaps them first).
//
// Fallback (kernel < 6.0, no buffer ring, or COIO_URING_BUFRING=0): each
// recv_pooled is a single-shot recv into a buffer of a free-list pool, taken
// at submit, so there a waiting socket does hold one buffer.
#include "backend/uring_backend.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>

namespace coio::detail {

namespace {
constexpr std::uint32_t initial_buffers = 64;
constexpr unsigned starved_waits_before_growth = 256;
} // namespace

uring_buffer_ring::~uring_buffer_ring() {
    if (m_br != nullptr) {
        ::munmap(m_br, m_ring_bytes);
    }
}

int uring_buffer_ring::setup(io_uring& ring) noexcept {
    const std::uint32_t entries = m_slabs.max_buffers(); // a power of two, <= 32768
    m_ring_bytes = entries * sizeof(io_uring_buf);
    void* p =
        ::mmap(nullptr, m_ring_bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) {
        return -errno;
    }
    auto* br = static_cast<io_uring_buf_ring*>(p);
    io_uring_buf_ring_init(br);
    io_uring_buf_reg reg{};
    reg.ring_addr = reinterpret_cast<std::uintptr_t>(p);
    reg.ring_entries = entries;
    reg.bgid = 0;
    if (const int r = io_uring_register_buf_ring(&ring, &reg, 0); r < 0) {
        ::munmap(p, m_ring_bytes);
        return r;
    }
    m_br = br;
    return 0;
}

void uring_buffer_ring::teardown(io_uring& ring) noexcept {
    if (m_br != nullptr) {
        (void)io_uring_unregister_buf_ring(&ring, 0);
        ::munmap(m_br, m_ring_bytes);
        m_br = nullptr;
    }
    while (m_slabs.slabs() > 0) {
        m_slabs.drop_last_slab();
    }
    m_out = 0;
}

bool uring_buffer_ring::grow() noexcept {
    if (m_br == nullptr || !m_slabs.add_slab()) {
        return false;
    }
    const int mask = io_uring_buf_ring_mask(m_slabs.max_buffers());
    const std::uint32_t first = m_slabs.count() - pool_slab_buffers;
    for (std::uint32_t i = 0; i < pool_slab_buffers; ++i) {
        io_uring_buf_ring_add(m_br, m_slabs.data(first + i), pool_buffer_size,
                              static_cast<unsigned short>(first + i), mask, static_cast<int>(i));
    }
    io_uring_buf_ring_advance(m_br, static_cast<int>(pool_slab_buffers));
    return true;
}

void uring_buffer_ring::give_back(std::uint32_t id) noexcept {
    io_uring_buf_ring_add(m_br, m_slabs.data(id), pool_buffer_size, static_cast<unsigned short>(id),
                          io_uring_buf_ring_mask(m_slabs.max_buffers()), 0);
    io_uring_buf_ring_advance(m_br, 1);
    --m_out;
}

void uring_buffer_ring::abandon() noexcept {
    m_br = nullptr;
    m_slabs.abandon();
}

// Decided at the first recv_pooled (and again after a rebuild()).
uring_backend::pool_mode uring_backend::pooled_mode() noexcept {
    if (m_pool_mode != pool_mode::unknown) {
        return m_pool_mode;
    }
    m_pool_mode = pool_mode::single;
    if (const char* knob = std::getenv("COIO_URING_BUFRING"); knob != nullptr) {
        if (std::string_view(knob) == "0") {
            return m_pool_mode;
        }
    }
    // Multishot recv came with Linux 6.0, as did IORING_OP_SEND_ZC; the
    // opcode probe has no entry for the former, so it asks for the latter.
    io_uring_probe* p = io_uring_get_probe_ring(&m_ring);
    const bool multishot = p != nullptr && io_uring_opcode_supported(p, IORING_OP_SEND_ZC) != 0;
    if (p != nullptr) {
        io_uring_free_probe(p);
    }
    if (!multishot || m_bufs.setup(m_ring) != 0) {
        return m_pool_mode;
    }
    try {
        m_queue_next.resize(m_bufs.max_buffers());
        m_queue_len.resize(m_bufs.max_buffers());
    } catch (...) {
        m_bufs.teardown(m_ring);
        return m_pool_mode;
    }
    while (m_bufs.provided() < std::min(initial_buffers, m_bufs.max_buffers()) && m_bufs.grow()) {
    }
    if (m_bufs.provided() == 0) {
        m_bufs.teardown(m_ring);
        return m_pool_mode;
    }
    m_pool_mode = pool_mode::ring;
    return m_pool_mode;
}

bool uring_backend::submit_pooled(io_op& op, entry& e) {
    const bool was = active(e);
    if (e.head != no_buf || e.end != no_end) {
        take_queued(e, op);
        settle(e, was);
        return true;
    }
    if (!e.armed && !e.starved) {
        if (m_bufs.available() > 0) {
            arm_recv(op.m_fd, e);
        } else {
            starve(op.m_fd, e);
        }
    }
    e.reader = &op;
    op.m_state = st_parked;
    ++m_parked;
    settle(e, was);
    return false;
}

void uring_backend::arm_recv(int fd, entry& e) noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        starve(fd, e); // retried by the next wait()
        return;
    }
    io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
    sqe->ioprio |= IORING_RECV_MULTISHOT;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = 0;
    io_uring_sqe_set_data64(sqe, recv_data(fd, e.gen));
    e.armed = true;
    ++m_multishots;
}

void uring_backend::starve(int fd, entry& e) noexcept {
    if (e.starved) {
        return;
    }
    try {
        m_starved.push_back(fd);
    } catch (...) {
        std::fprintf(stderr, "coio: io_uring: out of memory queueing a starved socket\n");
        std::abort();
    }
    e.starved = true;
}

// Re-arms starved sockets whose reader still waits, one per free buffer;
// grows the ring if readers stay starved (see the top of this file).
void uring_backend::rearm_starved(bool blocking) noexcept {
    if (m_starved.empty()) {
        m_short_waits = 0;
        return;
    }
    std::uint32_t budget = m_bufs.available();
    std::size_t n = 0;
    for (; n < m_starved.size() && budget > 0; ++n) {
        const int fd = m_starved[n];
        entry& e = m_table[static_cast<std::size_t>(fd)];
        if (!e.starved) {
            continue; // closed since
        }
        const bool was = active(e);
        e.starved = false;
        if (e.reader != nullptr && !e.armed) {
            arm_recv(fd, e);
            --budget;
        }
        settle(e, was);
    }
    m_starved.erase(m_starved.begin(), m_starved.begin() + static_cast<std::ptrdiff_t>(n));
    if (m_starved.empty()) {
        m_short_waits = 0;
    } else if ((blocking && m_in_flight == 0 && m_bufs.available() == 0) ||
               ++m_short_waits >= starved_waits_before_growth) {
        // Every buffer held by leases and queues, and the loop about to block
        // with no operation in the kernel whose completion could let one go
        // (such as the send an echo handler makes while it holds its lease):
        // nothing may come back, so grow. Or readers stay starved for long:
        // the ring is too small for this load.
        m_short_waits = 0;
        if (m_bufs.grow()) {
            rearm_starved(false);
        }
    }
}

void uring_backend::on_recv_cqe(std::uint64_t data, int res, unsigned flags, mode how) noexcept {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    const auto id = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
    if (has_buf) {
        m_bufs.taken();
    }
    if (!more) {
        --m_multishots;
    }
    const auto fd = static_cast<std::size_t>((data >> 3) & 0x1fffffffU);
    const auto gen = static_cast<std::uint32_t>(data >> 32);
    if (fd >= m_table.size() || m_table[fd].gen != gen || how == mode::drop) {
        if (has_buf) {
            m_bufs.give_back(id); // a closed socket's late data
        }
        return;
    }
    entry& e = m_table[fd];
    const bool was = active(e);
    if (!more) {
        e.armed = false;
    }
    if (has_buf && res > 0) {
        m_queue_len[id] = static_cast<std::uint16_t>(res);
        m_queue_next[id] = no_buf;
        (e.tail == no_buf ? e.head : m_queue_next[e.tail]) = id;
        e.tail = id;
        if (++e.queued == queue_cap && e.armed && e.reader == nullptr) {
            cancel_data(data); // ends with -ECANCELED: re-armed by the next wait for data
        }
    } else {
        if (has_buf) {
            m_bufs.give_back(id);
        }
        if (res == -ENOBUFS) {
            if (e.reader != nullptr) {
                starve(static_cast<int>(fd), e);
            }
        } else if (res <= 0 && res != -ECANCELED && !more) {
            e.end = res;
        }
    }
    if (e.reader != nullptr) {
        if (e.head != no_buf || e.end != no_end) {
            io_op& op = *std::exchange(e.reader, nullptr);
            --m_parked;
            take_queued(e, op);
            finish(op, how);
        } else if (!e.armed && !e.starved) {
            if (m_bufs.available() > 0) {
                arm_recv(static_cast<int>(fd), e);
            } else {
                starve(static_cast<int>(fd), e);
            }
        }
    }
    settle(e, was);
}

// Completes `op` with the socket's oldest queued buffer, or with its end.
void uring_backend::take_queued(entry& e, io_op& op) noexcept {
    if (e.head == no_buf) {
        op.m_result = e.end;
        return;
    }
    const std::uint16_t id = e.head;
    e.head = m_queue_next[id];
    if (e.head == no_buf) {
        e.tail = no_buf;
    }
    --e.queued;
    op.m_buf = m_bufs.data(id);
    op.m_len = id;
    op.m_addr = static_cast<buffer_pool*>(this);
    op.m_result = m_queue_len[id];
}

void uring_backend::drop_queue(entry& e) noexcept {
    while (e.head != no_buf) {
        const std::uint16_t id = e.head;
        e.head = m_queue_next[id];
        m_bufs.give_back(id);
    }
    e.tail = no_buf;
    e.queued = 0;
}

void uring_backend::cancel_multishots() noexcept {
    for (std::size_t fd = 0; fd < m_table.size(); ++fd) {
        if (m_table[fd].armed) {
            cancel_data(recv_data(static_cast<int>(fd), m_table[fd].gen));
        }
    }
}

void uring_backend::release_buffer(std::uint32_t id) noexcept {
    if ((id & single_bit) != 0) {
        m_single.give_back(id & ~single_bit);
    } else {
        m_bufs.give_back(id);
    }
}

std::size_t uring_backend::buffers_out() const noexcept {
    return m_bufs.out() + m_single.out();
}

} // namespace coio::detail
