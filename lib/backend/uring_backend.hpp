// lib/backend/uring_backend.hpp - the io_uring backend's private declarations.
//
// The backend is split by concern (STYLE P6):
//   uring.cpp          submit / cancel / forget / close / wait, the CQE loop;
//   uring_setup.cpp    ring creation, feature tiers, the probe, the issuer thread;
//   uring_buffers.cpp  the provided-buffer ring and multishot recv (recv_pooled).
//
// A completion engine, not poll emulation: accept, connect, recv and send are
// SQEs, and the kernel reports each one's result in a CQE (seastar's
// reactor_backend_uring, liburing's examples/proxy.c). Discipline:
//
//  - submit() only queues an SQE; it never completes inline (except argument
//    errors, and a recv_pooled that finds data queued). wait() hands the whole
//    batch to the kernel and waits in one io_uring_enter, then delivers every
//    CQE through the sink.
//  - An op SQE's user_data is the io_op's address; every other SQE carries a
//    small tag (below), so a CQE can only ever reach the op that was submitted
//    with it. The op - and with it the buffer and sockaddr - stays alive until
//    its own CQE has been reaped: cancel() and close() only ask the kernel to
//    finish early, forget() and the destructor block until it has.
//  - wake(): a blocking eventfd with one IORING_OP_READ always queued on it
//    (re-armed after each completion). A write from any thread completes the
//    read and so ends a wait() that is blocked, or the next one. Over a
//    multishot poll, which fires per wakeup and would need an extra read()
//    to reset the counter.
//  - wake_other(): one io_uring loop wakes another with IORING_OP_MSG_RING
//    (Linux 5.18) sent through its own ring - no eventfd write, and a CQE
//    (tag_msg) in the target's ring instead of a read to re-arm. Submitted at
//    once and only when the target's ring is enabled; the target's ring fd is
//    read and the SQE consumed under the target's m_msg_mutex, so a ring being
//    rebuilt or torn down cannot be sent to (uring_setup.cpp).
//  - recv_pooled: see uring_buffers.cpp. Not done: multishot accept.
//  - read, write, read_pooled (pipes, FIFOs, ttys; the fd is O_NONBLOCK, as
//    the readiness backends need it): IORING_OP_READ / IORING_OP_WRITE at
//    offset -1. Recent kernels wait for such an fd themselves (an internal
//    poll), but older ones (and RWF_NOWAIT) complete the SQE with -EAGAIN
//    when the fd has O_NONBLOCK: then the op becomes an IORING_OP_POLL_ADD
//    with the same user_data (st_polling) and the read or write is submitted
//    again when it fires - never returned to the caller. read_pooled reads
//    into a buffer of the single-shot pool (m_single), taken for the read
//    itself and given back if it brought nothing; its READ always carries
//    RWF_NOWAIT, so that the kernel never waits with the buffer (a waiting
//    pipe holds none): it takes the -EAGAIN path on every kernel. An fd that
//    refuses RWF_NOWAIT (-EOPNOTSUPP: a tty) is polled first and then read
//    without it (st_plain_read). COIO_URING_RW_NOWAIT=1 (a test knob) sets
//    RWF_NOWAIT on read and write SQEs too. wait_readable is a POLL_ADD of
//    POLLIN.
#pragma once

#include "backend/backend.hpp"
#include "backend/buffer_pool.hpp"
#include "sys/fd.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <string>
#include <type_traits>
#include <vector>

namespace coio::detail {

// The kernel writes the peer's length through op.m_addr_len, which io_op
// declares as uint32_t so that no OS header is needed there.
static_assert(std::is_same_v<socklen_t, std::uint32_t>, "socklen_t must be uint32_t");

// user_data: an op SQE carries the io_op's address. io_op is at least 8-byte
// aligned, so its low 3 bits are 0; every other SQE carries a value with some
// of those bits set, and such CQEs never touch an op:
//   tag_cancel - the CQE of a cancel request (the op's own CQE still follows);
//   tag_wake   - the eventfd read behind wake();
//   tag_msg    - a MSG_RING wake-up: the CQE another loop's ring posted in
//                this one, or the failure CQE of one this ring sent;
//   tag_recv   - a multishot recv into the small buffers: fd << 3 |
//                generation << 32 (recv_data()); tag_recv_big the same into
//                the big buffers. close() bumps the fd's generation, so CQEs
//                of a multishot that outlives its socket never reach the
//                fd's next owner (their buffers go back to their ring);
//   ~0         - LIBURING_UDATA_TIMEOUT, liburing's internal timeout SQE for
//                waits with a timeout on kernels without IORING_FEAT_EXT_ARG.
// An op is resubmitted (and its address reused) only after its CQE has been
// reaped, and there is one CQE per op SQE, so a stale op CQE cannot exist.
static_assert(alignof(io_op) >= 8, "io_op addresses must leave 3 tag bits free");
inline constexpr std::uint64_t tag_bits = 7;
inline constexpr std::uint64_t tag_cancel = 1;
inline constexpr std::uint64_t tag_wake = 2;
inline constexpr std::uint64_t tag_recv = 3;
inline constexpr std::uint64_t tag_recv_big = 4;
inline constexpr std::uint64_t tag_msg = 5;

inline std::uint64_t op_data(io_op& op) noexcept {
    return reinterpret_cast<std::uintptr_t>(&op);
}
inline io_op* op_from(std::uint64_t data) noexcept {
    return data != 0 && (data & tag_bits) == 0 ? reinterpret_cast<io_op*>(data) : nullptr;
}
inline std::uint64_t recv_data(int fd, std::uint32_t gen, bool big) noexcept {
    return (std::uint64_t{gen} << 32) | (static_cast<std::uint64_t>(fd) << 3) |
           (big ? tag_recv_big : tag_recv);
}
inline bool is_recv_data(std::uint64_t data) noexcept {
    return (data & tag_bits) == tag_recv || (data & tag_bits) == tag_recv_big;
}

// io_op::m_state bits while the backend owns the op.
inline constexpr std::uint8_t st_in_flight = 1;   // its SQE is queued or in the kernel
inline constexpr std::uint8_t st_cancel_sent = 2; // a cancel request for it is queued or done
inline constexpr std::uint8_t st_detached = 4;    // close() dropped its fd: it ends -ECANCELED
inline constexpr std::uint8_t st_forgotten = 8;   // forget(): reap its CQE, deliver nothing
inline constexpr std::uint8_t st_deferred = 16; // reaped outside wait(): delivered by the next one
inline constexpr std::uint8_t st_parked = 32;   // recv_pooled waiting for a multishot's data
inline constexpr std::uint8_t st_polling = 64;  // read/write got -EAGAIN: a POLL_ADD waits
inline constexpr std::uint8_t st_plain_read = 128; // read_pooled on an fd without RWF_NOWAIT

// uring_setup.cpp
std::uint64_t this_thread_serial() noexcept;
std::string kernel_gaps(io_uring& ring, unsigned features);
int init_ring(io_uring& ring, unsigned& flags, unsigned& cq_entries) noexcept;

// A provided-buffer ring (uring_ring.cpp): buffers of one size that the
// kernel picks for multishot recvs of one buffer group. Its capacity is fixed
// at setup; how many buffers it provides follows demand: grow() provides
// another slab, compact() takes the ring back from the kernel and provides
// fewer (see uring_ring.cpp).
//
// Counts: provided() ids [0, provided) circulate; out() of them are not in the
// ring (lent, queued on a socket, held in a reserve); available() are in the
// ring for the kernel.
class uring_buffer_ring {
public:
    uring_buffer_ring(std::size_t buffer_size, std::uint16_t group,
                      std::uint32_t max_buffers) noexcept;
    uring_buffer_ring(const uring_buffer_ring&) = delete;
    uring_buffer_ring& operator=(const uring_buffer_ring&) = delete;
    ~uring_buffer_ring();

    // Maps and registers an empty ring with room for max_buffers. 0 or -errno
    // (EINVAL: the kernel has no buffer rings, Linux < 5.19).
    int setup(io_uring& ring) noexcept;
    // Unregisters and unmaps; only once no multishot can pick a buffer.
    void teardown(io_uring& ring) noexcept;
    // Forgets the mappings without unmapping them (the kernel may still use them).
    void abandon() noexcept;
    [[nodiscard]] bool registered() const noexcept { return m_br != nullptr; }
    // Provides one more slab of buffers; false at the limit.
    bool grow() noexcept;
    // Provides only the slabs needed for `keep` buffers (and every buffer out
    // now); the others are unmapped. False if the ring could not be taken
    // back from the kernel (then nothing changed).
    bool compact(io_uring& ring, std::uint32_t keep) noexcept;
    // A CQE handed over buffer `id`.
    void taken(std::uint32_t id) noexcept {
        m_is_out[id] = 1;
        ++m_out;
    }
    // Buffer `id` goes back into the ring.
    void give_back(std::uint32_t id) noexcept;
    [[nodiscard]] char* data(std::uint32_t id) const noexcept { return m_slabs.data(id); }
    [[nodiscard]] std::uint32_t provided() const noexcept { return m_slabs.count(); }
    [[nodiscard]] std::uint32_t out() const noexcept { return m_out; }
    [[nodiscard]] std::uint32_t available() const noexcept { return provided() - m_out; }
    [[nodiscard]] std::uint32_t max_buffers() const noexcept { return m_slabs.max_buffers(); }
    [[nodiscard]] std::size_t buffer_size() const noexcept { return m_slabs.buffer_size(); }
    [[nodiscard]] std::uint16_t group() const noexcept { return m_group; }

private:
    void add(std::uint32_t id) noexcept; // into the ring, for the kernel
    int register_ring(io_uring& ring) noexcept;

    io_uring_buf_ring* m_br = nullptr;
    std::size_t m_ring_bytes = 0;
    buffer_slabs m_slabs;
    std::vector<std::uint8_t> m_is_out; // by id: 1 while out of the ring
    std::uint32_t m_out = 0;
    std::uint16_t m_group;
};

class uring_backend final : public backend {
public:
    explicit uring_backend(completion_sink& sink);
    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;
    ~uring_backend() override;

    [[nodiscard]] std::string_view name() const noexcept override { return "io_uring"; }
    bool submit(io_op& op) override;
    // Completions come with their result: nothing is ever scheduled.
    bool run_ready(io_op& /*op*/) noexcept override { return true; }
    void cancel(io_op& op) noexcept override;
    void forget(io_op& op) noexcept override;
    void close(int fd) noexcept override;
    void wait(std::chrono::nanoseconds timeout) override;
    void poll_ready() override;
    void wake() noexcept override;
    bool wake_other(backend& target) noexcept override;
    [[nodiscard]] std::size_t registrations() const noexcept override { return m_registered; }
    void release_buffer(std::uint32_t id) noexcept override;
    [[nodiscard]] std::size_t buffers_out() const noexcept override;
    [[nodiscard]] std::size_t buffer_bytes() const noexcept override;

private:
    // A buffer as a socket's queue and a lease name it: a small ring buffer
    // is its id, a big one carries big_node, a copy made when the ring ran dry
    // (and the single-shot fallback's buffers) carry single_bit.
    static constexpr std::uint32_t no_buf = 0xffffffffU;
    static constexpr std::uint32_t big_node = 0x10000U;
    static constexpr std::uint32_t single_bit = 0x80000000U;
    static constexpr std::int32_t no_end = 1;
    // Buffers one socket may queue while nobody reads it before its multishot
    // is cancelled (the rest waits in the kernel's socket buffer, under TCP
    // flow control), so a socket that nobody reads cannot take the ring. While
    // other sockets starve, the first queued buffer already cancels it.
    static constexpr std::uint16_t queue_cap = 16;

    struct entry {
        io_op* reader = nullptr;     // recv, accept, or a parked recv_pooled
        io_op* writer = nullptr;     // send or connect in flight
        std::uint32_t gen = 0;       // bumped by close(); multishot CQEs carry it
        std::int32_t end = no_end;   // the multishot's end (0 EOF, -errno) not yet read
        std::uint32_t head = no_buf; // buffers received and not yet read, linked
        std::uint32_t tail = no_buf; // through next_of()
        std::uint16_t queued = 0;    // buffers in that queue
        bool armed : 1 = false;      // a multishot recv is in the kernel
        bool armed_big : 1 = false;  // ... into the big buffers
        bool big : 1 = false;        // reads fill small buffers: arm into big ones
        bool small_only : 1 = false; // the last recv_pooled asked for op_small
        bool cancelling : 1 = false; // a cancel of the multishot is on its way
        bool starved : 1 = false;    // in m_starved: waits for free ring buffers
    };
    static_assert(sizeof(void*) != 8 || sizeof(entry) == 40); // one per fd number
    enum class mode : std::uint8_t { deliver, defer, drop };
    enum class pool_mode : std::uint8_t { unknown, ring, single };

    // uring.cpp
    static bool transient(int r) noexcept {
        return r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY;
    }
    [[noreturn]] static void enter_failed(int r);
    void prep(io_uring_sqe* sqe, io_op& op) const noexcept;
    io_uring_sqe* get_sqe() noexcept;
    int flush(bool settle = false) noexcept;
    void send_cancel(io_op& op) noexcept;
    void cancel_data(std::uint64_t data) noexcept;
    void detach_and_cancel(int fd, entry& e) noexcept;
    void arm_wake();
    void reap(mode how) noexcept;
    void handle(std::uint64_t data, int res, unsigned flags, mode how) noexcept;
    void finish(io_op& op, mode how) noexcept;
    bool deliver_deferred() noexcept;
    void discard(io_op& op, int res) noexcept;
    void untrack(io_op& op) noexcept;
    bool retry(io_op& op, int& res) noexcept;
    bool resubmit(io_op& op) noexcept;
    [[nodiscard]] static bool active(const entry& e) noexcept {
        return e.reader != nullptr || e.writer != nullptr || e.armed || e.starved ||
               e.head != no_buf || e.end != no_end;
    }
    void settle(const entry& e, bool was_active) noexcept {
        m_registered += static_cast<std::size_t>(active(e)) - static_cast<std::size_t>(was_active);
    }
    // Takes a parked recv_pooled (st_parked: waiting for a ring buffer, not in
    // the kernel) off its fd.
    void unpark(io_op& op) noexcept {
        entry& e = m_table[static_cast<std::size_t>(op.m_fd)];
        const bool was = active(e);
        e.reader = nullptr;
        --m_parked;
        settle(e, was);
    }

    // uring_setup.cpp
    [[nodiscard]] bool on_issuer_thread() const noexcept;
    int start() noexcept;
    int rebuild() noexcept;

    // uring_buffers.cpp
    pool_mode pooled_mode() noexcept;
    bool big_ready() noexcept;
    bool submit_pooled(io_op& op, entry& e);
    void arm_or_starve(int fd, entry& e) noexcept;
    void arm_recv(int fd, entry& e, bool big) noexcept;
    void cancel_recv(int fd, entry& e) noexcept;
    void starve(int fd, entry& e) noexcept;
    void rearm_starved(bool blocking) noexcept;
    void on_recv_cqe(std::uint64_t data, int res, unsigned flags, mode how) noexcept;
    void on_recv_data(int fd, entry& e, std::uint32_t node, int res, bool big) noexcept;
    void take_queued(entry& e, io_op& op) noexcept;
    void drop_queue(entry& e) noexcept;
    void give_node(std::uint32_t node) noexcept;
    std::uint32_t reclaim() noexcept;
    bool spill(entry& e) noexcept;
    void cancel_multishots() noexcept;
    std::chrono::nanoseconds maintain_rings() noexcept;
    std::uint32_t& next_of(std::uint32_t node) noexcept;
    std::uint32_t& len_of(std::uint32_t node) noexcept;
    [[nodiscard]] char* data_of(std::uint32_t node) const noexcept;

    completion_sink& m_sink;
    io_uring m_ring{};
    unsigned m_flags = 0;
    unsigned m_cq_entries = 0;
    bool m_started = false;
    std::uint64_t m_issuer = 0; // this_thread_serial() of the issuer, once m_started
    bool m_wake_armed = false;
    // reap() takes only the CQEs already in the ring, without entering for
    // deferred task work (poll_ready, and after a wait that entered); the
    // lazy polls in a row.
    bool m_lazy_poll = false;
    unsigned m_lazy_polls = 0;
    std::uint64_t m_wake_count = 0; // the kernel writes here; lives as long as the ring
    sys::unique_fd m_wake;
    std::vector<entry> m_table; // by fd number
    static constexpr std::size_t deferred_reserve = 1024;
    std::vector<io_op*> m_deferred;
    std::size_t m_registered = 0; // fds whose entry is active()
    std::size_t m_in_flight = 0;  // op SQEs whose CQE has not been reaped
    std::size_t m_multishots = 0; // multishot recvs whose last CQE has not been reaped
    std::size_t m_parked = 0;     // recv_pooled ops parked in m_table

    pool_mode m_pool_mode = pool_mode::unknown;
    uring_buffer_ring m_small; // group 0: 4 KiB buffers
    uring_buffer_ring m_big;   // group 1: 64 KiB buffers, set up when first wanted
    buffer_freelist m_single;  // copies made when the ring ran dry; the fallback's buffers
    std::vector<std::uint32_t> m_small_next, m_small_len;   // queue links, by small id
    std::vector<std::uint32_t> m_big_next, m_big_len;       // ... by big id
    std::vector<std::uint32_t> m_single_next, m_single_len; // ... by single id
    std::vector<int> m_starved;           // fds waiting for ring buffers (entry::starved), FIFO
    std::vector<std::uint32_t> m_reserve; // small ids that came back while sockets starve
    std::chrono::steady_clock::time_point m_starved_since{}; // when starvation began
    std::chrono::steady_clock::time_point m_last_trim{};
    std::chrono::nanoseconds m_trim_period;
    std::uint32_t m_peak_small = 0; // most small buffers out at once since the last trim
    std::uint32_t m_peak_big = 0;   // ... big ones
    bool m_big_failed = false;      // the big ring cannot be set up: stay small
    bool m_rw_nowait = false;       // COIO_URING_RW_NOWAIT: RWF_NOWAIT on read/write SQEs
    bool m_msg_ring = false; // MSG_RING and CQE_SKIP_SUCCESS work (COIO_URING_MSG_RING=0: not used)

    // What other loops' wake_other() reads: this ring's fd while it is
    // enabled, else -1 (uring_setup.cpp).
    std::mutex m_msg_mutex;
    int m_msg_fd = -1;
    void publish_ring(bool enabled) noexcept;
};

} // namespace coio::detail
