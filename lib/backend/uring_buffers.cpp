// lib/backend/uring_buffers.cpp - recv_pooled on io_uring: provided-buffer
// rings and one multishot recv per socket.
//
// Multishot recv: the first recv_pooled on a socket arms one
// IORING_RECV_MULTISHOT recv with IOSQE_BUFFER_SELECT; it stays armed, so a
// read costs no SQE. Each CQE carries one buffer. A parked reader gets it at
// once; otherwise it is queued on the socket (linked by buffer through
// next_of(), so queueing allocates nothing) and the next recv_pooled
// completes inline from the queue. The multishot ends without
// IORING_CQE_F_MORE: EOF (res 0) or an error is recorded as the socket's end,
// delivered after the queued data and again to every later read; -ENOBUFS
// means the ring was empty (nothing is lost: the data stays in the socket).
//
// Two rings. Buffer group 0 has the small buffers (4 KiB); group 1, set up
// when a socket first asks for it, the big ones (64 KiB). A socket whose CQE
// fills a small buffer re-arms into the big ones (its multishot is cancelled
// and armed again), and goes back to small ones when a CQE brings less than
// a quarter of a small buffer, so bulk transfers and pipelined requests take
// one CQE per 64 KiB while idle sockets stay small. An empty big ring sends
// the socket back to the small one: big buffers never make anyone wait.
//
// When the small ring runs short (buffer_pool.hpp has the shared rules):
//  - Fair turns. Sockets whose reader waits and found no buffer (-ENOBUFS, or
//    none free when arming) wait in m_starved, FIFO; a new arm queues behind
//    them. Buffers that come back while sockets starve are held in m_reserve
//    instead of the ring, and wait() puts them into the ring right before it
//    submits the starved sockets' new multishots, which the kernel issues
//    before it runs other sockets' receive work - so the longest-waiting get
//    them, and a busy socket whose multishot stays armed cannot take every
//    buffer that comes back (the weakness the previous design had: p99 0.2 s
//    with 1,000 busy connections). A busy socket that then finds the ring
//    empty joins the back of the line.
//  - Nobody holds what nobody reads. A socket with no reader waiting cancels
//    its multishot at the first queued buffer while others starve (at 16
//    otherwise). If readers starve and no buffer can be given, the queued
//    buffers of sockets nobody is reading are copied into buffers of our own
//    (m_single, packed, at most 16 MiB in all) and go back to the ring, so a
//    ring that runs dry never stalls readers that have data: clients that
//    write and never read cannot freeze a server.
//  - Growth from demand. The ring starts with 64 buffers; when sockets have
//    starved continuously for 250 ms - a load, not a burst - or the loop
//    would block with readers starved and nothing to give them, it grows by
//    enough slabs for the sockets waiting. Once a second (the trim period),
//    slabs beyond what the last second needed are taken back from the kernel
//    and unmapped (uring_ring.cpp, compact), so memory comes back when the
//    load falls, also when the connections go quiet.
// A waiting recv_pooled is parked in the backend, not in the kernel: cancel
// and forget just unpark it. close() cancels the multishot and bumps the fd's
// generation (carried in its user_data), so its late CQEs only return their
// buffers. A ring is unmapped only once no multishot is left in the kernel.
//
// Fallback (kernel < 6.0, no buffer ring, or COIO_URING_BUFRING=0): each
// recv_pooled is a single-shot recv into a buffer of m_single taken at submit,
// so there a waiting socket does hold one buffer.
#include "backend/uring_backend.hpp"
#include "backend/valgrind_marks.hpp"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string_view>
#include <utility>

namespace coio::detail {

namespace {
constexpr std::uint32_t initial_small = 64;
constexpr std::uint32_t initial_big = 16;
constexpr std::chrono::milliseconds grow_after{250};
constexpr std::uint32_t slab_small = 64;
} // namespace

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
    if (!multishot) {
        return m_pool_mode;
    }
    // Out of memory here is not a reason to run without the ring for the
    // loop's whole life (a waiting socket would then hold a buffer): the
    // mode stays undecided, this read fails with ENOMEM, the next one tries
    // again.
    if (const int r = m_small.setup(m_ring); r != 0) {
        if (r == -ENOMEM) {
            m_pool_mode = pool_mode::unknown;
        }
        return m_pool_mode;
    }
    try {
        m_small_next.resize(m_small.max_buffers());
        m_small_len.resize(m_small.max_buffers());
    } catch (...) {
        m_small.teardown(m_ring);
        m_pool_mode = pool_mode::unknown;
        return m_pool_mode;
    }
    while (m_small.provided() < std::min(initial_small, m_small.max_buffers()) && m_small.grow()) {
    }
    if (m_small.provided() == 0) {
        m_small.teardown(m_ring); // no memory for a single slab
        m_pool_mode = pool_mode::unknown;
        return m_pool_mode;
    }
    m_pool_mode = pool_mode::ring;
    return m_pool_mode;
}

// The big ring, set up on first use; false if it cannot be (then sockets
// simply stay on small buffers).
bool uring_backend::big_ready() noexcept {
    if (m_big.registered()) {
        return true;
    }
    if (m_big_failed || m_big.setup(m_ring) != 0) {
        m_big_failed = true;
        return false;
    }
    try {
        m_big_next.resize(m_big.max_buffers());
        m_big_len.resize(m_big.max_buffers());
    } catch (...) {
        m_big.teardown(m_ring);
        m_big_failed = true;
        return false;
    }
    while (m_big.provided() < initial_big && m_big.grow()) {
    }
    return true;
}

std::uint32_t& uring_backend::next_of(std::uint32_t node) noexcept {
    if ((node & single_bit) != 0) {
        return m_single_next[node & ~single_bit];
    }
    return (node & big_node) != 0 ? m_big_next[node & ~big_node] : m_small_next[node];
}

std::uint32_t& uring_backend::len_of(std::uint32_t node) noexcept {
    if ((node & single_bit) != 0) {
        return m_single_len[node & ~single_bit];
    }
    return (node & big_node) != 0 ? m_big_len[node & ~big_node] : m_small_len[node];
}

char* uring_backend::data_of(std::uint32_t node) const noexcept {
    if ((node & single_bit) != 0) {
        return m_single.data(node & ~single_bit);
    }
    return (node & big_node) != 0 ? m_big.data(node & ~big_node) : m_small.data(node);
}

bool uring_backend::submit_pooled(io_op& op, entry& e) {
    const bool was = active(e);
    e.small_only = (op.m_flags & op_small) != 0;
    if (e.small_only) {
        e.big = false; // a multishot armed big is re-armed at its next CQE
    }
    if (e.head != no_buf || e.end != no_end) {
        take_queued(e, op);
        settle(e, was);
        return true;
    }
    e.reader = &op;
    op.m_state = st_parked;
    ++m_parked;
    if (!e.armed && !e.starved) {
        arm_or_starve(op.m_fd, e);
    }
    settle(e, was);
    return false;
}

// Arms fd's multishot if a buffer can be had without jumping the line of
// starved sockets; otherwise the socket joins that line.
void uring_backend::arm_or_starve(int fd, entry& e) noexcept {
    const bool big = e.big && big_ready() && m_big.available() > 0;
    if (big || (m_small.available() > 0 && m_starved.empty())) {
        arm_recv(fd, e, big);
    } else {
        starve(fd, e);
    }
}

void uring_backend::arm_recv(int fd, entry& e, bool big) noexcept {
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        starve(fd, e); // retried by the next wait()
        return;
    }
    io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
    sqe->ioprio |= IORING_RECV_MULTISHOT;
    sqe->flags |= IOSQE_BUFFER_SELECT;
    sqe->buf_group = big ? m_big.group() : m_small.group();
    io_uring_sqe_set_data64(sqe, recv_data(fd, e.gen, big));
    e.armed = true;
    e.armed_big = big;
    e.cancelling = false;
    ++m_multishots;
}

void uring_backend::cancel_recv(int fd, entry& e) noexcept {
    if (e.armed && !e.cancelling) {
        cancel_data(recv_data(fd, e.gen, e.armed_big));
        e.cancelling = true;
    }
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

// Before each submit: starved sockets whose reader still waits get a
// multishot, one per buffer there is to give, oldest first; the buffers held
// for them go into the ring right before the submit (see the top of this
// file). Grows the ring on sustained starvation or to avoid a stall.
void uring_backend::rearm_starved(bool blocking) noexcept {
    if (m_starved.empty()) {
        for (const std::uint32_t id : std::exchange(m_reserve, {})) {
            m_small.give_back(id);
        }
        m_starved_since = {};
        return;
    }
    std::size_t budget = m_small.available() + m_reserve.size();
    if (budget == 0) {
        budget = reclaim();
    }
    const bool dry = budget == 0;
    std::size_t n = 0;
    for (; n < m_starved.size() && budget > 0; ++n) {
        const int fd = m_starved[n];
        entry& e = m_table[static_cast<std::size_t>(fd)];
        if (!e.starved) {
            continue; // closed or unparked since
        }
        const bool was = active(e);
        e.starved = false;
        if (e.reader != nullptr && !e.armed) {
            arm_recv(fd, e, false);
            --budget;
        }
        settle(e, was);
    }
    m_starved.erase(m_starved.begin(), m_starved.begin() + static_cast<std::ptrdiff_t>(n));
    for (const std::uint32_t id : std::exchange(m_reserve, {})) {
        m_small.give_back(id);
    }
    if (m_starved.empty()) {
        m_starved_since = {};
        return;
    }
    const auto now = std::chrono::steady_clock::now();
    if (m_starved_since == std::chrono::steady_clock::time_point{}) {
        m_starved_since = now;
    }
    if ((blocking && dry) || now - m_starved_since >= grow_after) {
        // A load the ring is too small for, or every buffer held and nothing
        // to reclaim: grow by enough slabs for the sockets waiting.
        m_starved_since = now;
        const std::size_t want = (m_starved.size() + slab_small - 1) / slab_small;
        bool grew = false;
        for (std::size_t i = 0; i < want && m_small.grow(); ++i) {
            grew = true;
        }
        if (grew) {
            rearm_starved(false);
        }
    }
}

// The ring ran dry while readers starve: copy the queued buffers of sockets
// nobody reads now into buffers of our own and give the ring buffers back.
// Returns how many ring buffers came free.
std::uint32_t uring_backend::reclaim() noexcept {
    const std::uint32_t before = static_cast<std::uint32_t>(m_reserve.size());
    for (std::size_t fd = 0; fd < m_table.size(); ++fd) {
        entry& e = m_table[fd];
        if (e.reader == nullptr && e.head != no_buf) {
            cancel_recv(static_cast<int>(fd), e);
            if (!spill(e)) {
                break; // our own buffers ran out too
            }
        }
    }
    return static_cast<std::uint32_t>(m_reserve.size()) - before;
}

// Copies e's queued ring buffers, in order and packed, into m_single buffers
// and gives the ring buffers back. False if m_single ran out (what was not
// copied stays queued as it was).
bool uring_backend::spill(entry& e) noexcept {
    std::uint32_t head = no_buf;
    std::uint32_t tail = no_buf;
    std::uint16_t count = 0;
    auto append = [&](std::uint32_t node) {
        next_of(node) = no_buf;
        (tail == no_buf ? head : next_of(tail)) = node;
        tail = node;
        ++count;
    };
    bool ok = true;
    std::uint32_t node = e.head;
    while (node != no_buf) {
        const std::uint32_t next = next_of(node);
        if ((node & single_bit) != 0 || !ok) {
            append(node);
            node = next;
            continue;
        }
        std::uint32_t len = len_of(node);
        const char* src = data_of(node);
        while (len > 0) {
            if (tail == no_buf || (tail & single_bit) == 0 || len_of(tail) == small_buffer_size) {
                const std::int64_t id =
                    m_single.out() < pool_max_buffers() ? m_single.take() : std::int64_t{-1};
                if (id < 0) {
                    break;
                }
                const auto sid = static_cast<std::uint32_t>(id);
                if (sid >= m_single_next.size()) {
                    try {
                        m_single_next.resize(sid + 1024);
                        m_single_len.resize(sid + 1024);
                    } catch (...) {
                        m_single.give_back(sid);
                        break;
                    }
                }
                len_of(sid | single_bit) = 0;
                append(sid | single_bit);
            }
            const std::uint32_t room = static_cast<std::uint32_t>(small_buffer_size) - len_of(tail);
            const std::uint32_t n = std::min(room, len);
            std::memcpy(data_of(tail) + len_of(tail), src, n);
            len_of(tail) += n;
            src += n;
            len -= n;
        }
        if (len > 0) { // out of our own buffers: keep the rest of this one as it is
            ok = false;
            const std::uint32_t done = len_of(node) - len;
            if (done > 0) {
                std::memmove(data_of(node), data_of(node) + done, len);
                len_of(node) = len;
            }
            append(node);
        } else {
            give_node(node);
        }
        node = next;
    }
    e.head = head;
    e.tail = tail;
    e.queued = count;
    return ok;
}

void uring_backend::on_recv_cqe(std::uint64_t data, int res, unsigned flags, mode how) noexcept {
    const bool more = (flags & IORING_CQE_F_MORE) != 0;
    const bool has_buf = (flags & IORING_CQE_F_BUFFER) != 0;
    const bool big = (data & tag_bits) == tag_recv_big;
    std::uint32_t node = no_buf;
    if (has_buf) {
        const auto id = static_cast<std::uint32_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (big) {
            m_big.taken(id);
            m_peak_big = std::max(m_peak_big, m_big.out());
        } else {
            m_small.taken(id);
            m_peak_small = std::max(m_peak_small, m_small.out());
        }
        node = big ? (id | big_node) : id;
    }
    if (!more) {
        --m_multishots;
    }
    const auto fd = static_cast<std::size_t>((data >> 3) & 0x1fffffffU);
    const auto gen = static_cast<std::uint32_t>(data >> 32);
    if (fd >= m_table.size() || m_table[fd].gen != gen || how == mode::drop) {
        if (node != no_buf) {
            give_node(node); // a closed socket's late data
        }
        return;
    }
    entry& e = m_table[fd];
    const bool was = active(e);
    if (!more) {
        e.armed = false;
        e.cancelling = false;
    }
    if (node != no_buf && res > 0) {
        on_recv_data(static_cast<int>(fd), e, node, res, big);
    } else {
        if (node != no_buf) {
            give_node(node);
        }
        if (res == -ENOBUFS) {
            if (big) {
                e.big = false; // no big buffer free: small ones will do
            } else if (e.reader != nullptr) {
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
            arm_or_starve(static_cast<int>(fd), e);
        }
    }
    settle(e, was);
}

// A CQE brought `res` bytes in `node`: queue them, and adjust the socket's
// buffer size and whether its multishot should go on.
void uring_backend::on_recv_data(int fd, entry& e, std::uint32_t node, int res, bool big) noexcept {
    const auto n = static_cast<std::uint32_t>(res);
    len_of(node) = n;
    next_of(node) = no_buf;
    (e.tail == no_buf ? e.head : next_of(e.tail)) = node;
    e.tail = node;
    ++e.queued;
    if (!big && n >= small_buffer_size && !e.small_only) {
        e.big = true; // it filled a small buffer: re-arm into big ones
    } else if (big && n < small_buffer_size / 4) {
        e.big = false;
    }
    const bool wrong_size = e.armed && e.armed_big != e.big && (!e.big || big_ready());
    const bool nobody_reads = e.reader == nullptr && (e.queued >= queue_cap || !m_starved.empty());
    if (wrong_size || nobody_reads) {
        cancel_recv(fd, e); // its last CQE re-arms it if a reader waits
    }
}

// Completes `op` with the socket's oldest queued buffer, or with its end.
void uring_backend::take_queued(entry& e, io_op& op) noexcept {
    if (e.head == no_buf) {
        op.m_result = e.end;
        return;
    }
    const std::uint32_t node = e.head;
    e.head = next_of(node);
    if (e.head == no_buf) {
        e.tail = no_buf;
    }
    --e.queued;
    op.m_arg.lent = io_lent{data_of(node), this, node};
    op.m_result = static_cast<int>(len_of(node));
    mark_kernel_writes(op, op.m_result); // valgrind_marks.hpp
}

void uring_backend::drop_queue(entry& e) noexcept {
    while (e.head != no_buf) {
        const std::uint32_t node = e.head;
        e.head = next_of(node);
        give_node(node);
    }
    e.tail = no_buf;
    e.queued = 0;
}

// A buffer comes back (a lease ended, a queue was dropped). Small ones are
// held for starved sockets while there are any.
void uring_backend::give_node(std::uint32_t node) noexcept {
    if ((node & single_bit) != 0) {
        m_single.give_back(node & ~single_bit);
    } else if ((node & big_node) != 0) {
        m_big.give_back(node & ~big_node);
    } else if (!m_starved.empty()) {
        try {
            m_reserve.push_back(node);
        } catch (...) {
            m_small.give_back(node);
        }
    } else {
        m_small.give_back(node);
    }
}

void uring_backend::cancel_multishots() noexcept {
    for (std::size_t fd = 0; fd < m_table.size(); ++fd) {
        entry& e = m_table[fd];
        if (e.armed) {
            cancel_data(recv_data(static_cast<int>(fd), e.gen, e.armed_big));
        }
    }
}

// Once per trim period: give the rings back what the last period did not
// need (never below their first 64 small and 16 big buffers), unless sockets
// starve. Returns how long a wait may last before this is worth calling again
// (negative: no limit).
std::chrono::nanoseconds uring_backend::maintain_rings() noexcept {
    if (m_small.provided() <= initial_small && m_big.provided() <= initial_big) {
        return std::chrono::nanoseconds(-1);
    }
    const auto now = std::chrono::steady_clock::now();
    const auto since = now - m_last_trim;
    if (since < m_trim_period) {
        return m_trim_period - since;
    }
    m_last_trim = now;
    if (m_starved.empty()) {
        const std::uint32_t keep_small = std::max(initial_small, m_peak_small + slab_small);
        if (keep_small < m_small.provided()) {
            (void)m_small.compact(m_ring, keep_small);
        }
        const std::uint32_t keep_big = std::max(initial_big, m_peak_big + initial_big);
        if (keep_big < m_big.provided()) {
            (void)m_big.compact(m_ring, keep_big);
        }
    }
    m_peak_small = m_small.out();
    m_peak_big = m_big.out();
    return m_trim_period;
}

void uring_backend::release_buffer(std::uint32_t id) noexcept {
    give_node(id);
}

std::size_t uring_backend::buffers_out() const noexcept {
    return m_small.out() - m_reserve.size() + m_big.out() + m_single.out();
}

std::size_t uring_backend::buffer_bytes() const noexcept {
    return m_small.provided() * m_small.buffer_size() + m_big.provided() * m_big.buffer_size() +
           m_single.mapped_bytes();
}

} // namespace coio::detail
