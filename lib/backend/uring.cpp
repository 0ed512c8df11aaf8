// lib/backend/uring.cpp - the io_uring completion backend for Linux.
//
// A completion engine, not poll emulation: accept, connect, recv and send are
// SQEs, and the kernel reports each one's result in a CQE (seastar's
// reactor_backend_uring, liburing's examples/proxy.c). Discipline:
//
//  - submit() only queues an SQE; it never completes inline (except argument
//    errors). wait() hands the whole batch to the kernel and waits in one
//    io_uring_enter, then delivers every CQE through the sink.
//  - user_data is the io_op's address; every other SQE carries a small tag
//    (see "user_data" below), so a CQE can only ever reach the op that was
//    submitted with it. The op - and with it the buffer and sockaddr - stays
//    alive until its own CQE has been reaped: cancel() and close() only ask the
//    kernel to finish early, forget() and the destructor block until it has.
//  - Setup picks the best task-work mode the kernel has (see init_ring).
//  - wake(): a blocking eventfd with one IORING_OP_READ always queued on it
//    (re-armed after each completion). A write from any thread completes the
//    read and so ends a wait() that is blocked, or the next one. Chosen over
//    IORING_OP_MSG_RING, which would need a second ring per waking thread (or
//    a lock) and Linux 5.18; over a multishot poll, which fires per wakeup and
//    would need an extra read() to reset the counter.
//  - Not done: provided-buffer rings with multishot recv (an idle connection
//    would then hold no buffer) and multishot accept. The io_op model hands
//    the caller's buffer to every recv, which a buffer ring cannot honour
//    without a copy; both would need a different op interface.
#include "backend/backend.hpp"
#include "sys/fd.hpp"

#include <liburing.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <type_traits>
#include <utility>
#include <vector>

namespace coio::detail {
namespace {

// The kernel writes the peer's length through op.m_addr_len, which io_op
// declares as uint32_t so that no OS header is needed there.
static_assert(std::is_same_v<socklen_t, std::uint32_t>, "socklen_t must be uint32_t");

// user_data: an op SQE carries the io_op's address. io_op is at least 8-byte
// aligned, so its low 3 bits are 0; every other SQE carries a value with some
// of those bits set, and such CQEs never touch an op:
//   tag_cancel - the CQE of a cancel request (the op's own CQE still follows);
//   tag_wake   - the eventfd read behind wake();
//   ~0         - LIBURING_UDATA_TIMEOUT, liburing's internal timeout SQE for
//                waits with a timeout on kernels without IORING_FEAT_EXT_ARG.
// An op is resubmitted (and its address reused) only after its CQE has been
// reaped, and there is one CQE per op SQE (no multishot), so a stale CQE
// cannot exist.
static_assert(alignof(io_op) >= 8, "io_op addresses must leave 3 tag bits free");
constexpr std::uint64_t tag_bits = 7;
constexpr std::uint64_t tag_cancel = 1;
constexpr std::uint64_t tag_wake = 2;

std::uint64_t op_data(io_op& op) noexcept {
    return reinterpret_cast<std::uintptr_t>(&op);
}
io_op* op_from(std::uint64_t data) noexcept {
    return data != 0 && (data & tag_bits) == 0 ? reinterpret_cast<io_op*>(data) : nullptr;
}

// io_op::m_state bits while the backend owns the op.
constexpr std::uint8_t st_in_flight = 1;   // its SQE is queued or in the kernel
constexpr std::uint8_t st_cancel_sent = 2; // a cancel request for it is queued or done
constexpr std::uint8_t st_detached = 4;    // close() dropped its fd: it ends -ECANCELED
constexpr std::uint8_t st_forgotten = 8;   // forget(): reap its CQE, deliver nothing
constexpr std::uint8_t st_deferred = 16;   // reaped outside wait(): delivered by the next one

constexpr unsigned sq_size = 4096;
// Every connection may have a recv and a send in flight; 65536 CQEs (the
// kernel's maximum, clamped on older ones) keep 20,000 idle connections far
// from an overflow. Beyond that IORING_FEAT_NODROP keeps the excess in the
// kernel until the next io_uring_enter(GETEVENTS) flushes it (see reap()).
constexpr unsigned cq_size = 65536;

// Names the calling thread, uniquely for the life of the process: the kernel
// binds a SINGLE_ISSUER ring to a task, and pthread_t values and TIDs of
// finished threads are reused (a joined thread's successor often gets the
// same pthread_t).
std::uint64_t this_thread_serial() noexcept {
    static std::atomic<std::uint64_t> next{0};
    thread_local const std::uint64_t serial = ++next;
    return serial;
}

bool is_write_side(op_code c) noexcept {
    return c == op_code::send || c == op_code::sendmsg || c == op_code::connect;
}

// What a kernel must have for this backend, or why not.
std::string kernel_gaps(io_uring& ring, unsigned features) {
    if ((features & IORING_FEAT_NODROP) == 0) {
        return "io_uring: kernel lacks IORING_FEAT_NODROP (Linux 5.5): completions could be lost";
    }
    if ((features & IORING_FEAT_FAST_POLL) == 0) {
        return "io_uring: kernel lacks IORING_FEAT_FAST_POLL (Linux 5.7): each pending recv "
               "would hold a kernel worker thread";
    }
    io_uring_probe* p = io_uring_get_probe_ring(&ring);
    if (p == nullptr) {
        return "io_uring: kernel cannot report its opcodes (IORING_REGISTER_PROBE, Linux 5.6)";
    }
    std::string why;
    for (int code : {IORING_OP_ACCEPT, IORING_OP_CONNECT, IORING_OP_RECV, IORING_OP_SEND,
                     IORING_OP_ASYNC_CANCEL, IORING_OP_READ}) {
        if (io_uring_opcode_supported(p, code) == 0) {
            why = "io_uring: kernel lacks opcode " + std::to_string(code);
            break;
        }
    }
    io_uring_free_probe(p);
    return why;
}

// Creates `ring` with the best task-work mode this kernel accepts. Each tier
// is tried in turn; EINVAL means "flag unknown here", so the next tier drops
// it (io_uring_setup(2)):
//  1. SINGLE_ISSUER (6.0) | DEFER_TASKRUN (6.1, requires SINGLE_ISSUER):
//     completions run only when the loop's thread enters with GETEVENTS, in
//     a batch, never by interrupting it. TASKRUN_FLAG makes the kernel raise
//     IORING_SQ_TASKRUN when such work is pending, so wait(0) enters only
//     then. R_DISABLED postpones the choice of that thread to the first use
//     (see start()), so a loop may be built on one thread and run on another.
//  2. COOP_TASKRUN (5.19) | TASKRUN_FLAG: no IPI per completion.
//  3. none.
// ENOMEM halves the sizes (kernels before 5.12 charge rings to RLIMIT_MEMLOCK).
// Test knobs: COIO_URING_SETUP=coop or =plain starts at tier 2 or 3, so that
// the tests can run the modes of older kernels here; COIO_URING_ENTRIES=n
// makes both rings n entries, so that they can fill the SQ and overflow the CQ.
// Returns 0 or an errno, with the flags in effect and the CQ size.
int init_ring(io_uring& ring, unsigned& flags, unsigned& cq_entries) noexcept {
    constexpr std::array<unsigned, 3> tiers{
        IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_TASKRUN_FLAG |
            IORING_SETUP_R_DISABLED,
        IORING_SETUP_COOP_TASKRUN | IORING_SETUP_TASKRUN_FLAG,
        0U,
    };
    std::size_t first = 0;
    if (const char* want = std::getenv("COIO_URING_SETUP")) {
        first = std::string_view(want) == "coop" ? 1 : std::string_view(want) == "plain" ? 2 : 0;
    }
    unsigned sq = sq_size;
    unsigned cq = cq_size;
    if (const char* n = std::getenv("COIO_URING_ENTRIES")) {
        const unsigned long v = std::strtoul(n, nullptr, 10);
        if (v >= 2 && v <= sq_size) {
            sq = cq = static_cast<unsigned>(v);
        }
    }
    int err = EINVAL;
    for (std::size_t t = first; t < tiers.size(); ++t) {
        const unsigned mode = tiers[t];
        for (;;) {
            io_uring_params p{};
            p.flags = mode | IORING_SETUP_CQSIZE | IORING_SETUP_CLAMP;
            p.cq_entries = cq;
            err = -io_uring_queue_init_params(sq, &ring, &p);
            if (err == 0) {
                flags = p.flags;
                cq_entries = p.cq_entries;
                return 0;
            }
            if (err != ENOMEM || sq <= 64) {
                break;
            }
            sq /= 2;
            cq /= 2;
        }
        if (err != EINVAL) {
            break;
        }
    }
    return err;
}

class uring_backend final : public backend {
public:
    explicit uring_backend(completion_sink& sink) : m_sink(sink) {
        if (const int e = init_ring(m_ring, m_flags, m_cq_entries); e != 0) {
            throw std::runtime_error(sys::errno_message("io_uring_queue_init", e));
        }
        if (std::string why = kernel_gaps(m_ring, m_ring.features); !why.empty()) {
            io_uring_queue_exit(&m_ring);
            throw std::runtime_error(why);
        }
        m_started = (m_flags & IORING_SETUP_R_DISABLED) == 0;
        // Blocking on purpose: io_uring fails a read on an O_NONBLOCK file
        // with -EAGAIN instead of waiting for it to become readable.
        m_wake.reset(::eventfd(0, EFD_CLOEXEC));
        if (!m_wake) {
            const int e = errno;
            io_uring_queue_exit(&m_ring);
            throw std::runtime_error(sys::errno_message("eventfd", e));
        }
        if (std::getenv("COIO_URING_DEBUG") != nullptr) { // the flags in effect, for diagnosis
            std::fprintf(stderr, "coio: io_uring setup flags 0x%x, sq %u, cq %u, features 0x%x\n",
                         m_flags, m_ring.sq.ring_entries, m_cq_entries, m_ring.features);
        }
    }

    uring_backend(const uring_backend&) = delete;
    uring_backend& operator=(const uring_backend&) = delete;

    // Ops still in flight here belong to frames that outlive the loop (leaked
    // on purpose). Cancel them and the wake read, and reap until the kernel has
    // let go of every buffer before the ring goes away.
    ~uring_backend() override {
        // Only the issuer may reap a SINGLE_ISSUER ring. If the loop is torn
        // down by another thread with just the wake read left, closing the
        // ring cancels that read (a poll-armed read on an empty eventfd).
        const bool idle_elsewhere = m_in_flight == 0 && !on_issuer_thread();
        if (m_started && !idle_elsewhere && (m_in_flight > 0 || m_wake_armed)) {
            for (entry& e : m_table) {
                for (io_op* op : {e.reader, e.writer}) {
                    if (op != nullptr) {
                        send_cancel(*op);
                    }
                }
            }
            if (m_wake_armed) {
                if (io_uring_sqe* sqe = get_sqe()) {
                    io_uring_prep_cancel64(sqe, tag_wake, 0);
                    io_uring_sqe_set_data64(sqe, tag_cancel);
                }
            }
            while (m_in_flight > 0 || m_wake_armed) {
                const int r = io_uring_submit_and_wait(&m_ring, 1);
                if (r < 0 && !transient(r)) {
                    std::fprintf(stderr, "coio: io_uring teardown: %s\n", std::strerror(-r));
                    break;
                }
                reap(mode::drop);
            }
        }
        for (io_op* op : m_deferred) {
            if (op != nullptr) {
                discard(*op, op->m_result);
            }
        }
        io_uring_queue_exit(&m_ring);
    }

    [[nodiscard]] std::string_view name() const noexcept override { return "io_uring"; }

    bool submit(io_op& op) override {
        op.m_state = 0;
        if (const int r = start(); r < 0) {
            enter_failed(r);
        }
        if (op.m_fd < 0) {
            op.m_result = -EBADF;
            return true;
        }
        if (op.m_code == op_code::connect && (op.m_addr == nullptr || op.m_addr_len == nullptr)) {
            op.m_result = -EINVAL;
            return true;
        }
        const auto fd = static_cast<std::size_t>(op.m_fd);
        if (fd >= m_table.size()) {
            m_table.resize(std::max<std::size_t>(fd + 1, m_table.size() * 2));
        }
        if ((is_write_side(op.m_code) ? m_table[fd].writer : m_table[fd].reader) != nullptr) {
            op.m_result = -EBUSY; // another op of the same direction is in flight
            return true;
        }
        io_uring_sqe* sqe = get_sqe();
        if (sqe == nullptr) {
            throw std::runtime_error("io_uring: the submission queue is full and the kernel "
                                     "refuses to take it");
        }
        prep(sqe, op);
        io_uring_sqe_set_data64(sqe, op_data(op));
        entry& e = m_table[fd]; // get_sqe() may have reaped, never resized
        if (e.reader == nullptr && e.writer == nullptr) {
            ++m_registered;
        }
        (is_write_side(op.m_code) ? e.writer : e.reader) = &op;
        op.m_state = st_in_flight;
        ++m_in_flight;
        return false;
    }

    // Queued for the next wait(); the op's own CQE reports the outcome.
    void cancel(io_op& op) noexcept override {
        if ((op.m_state & st_in_flight) != 0) {
            send_cancel(op);
        }
    }

    void forget(io_op& op) noexcept override {
        if ((op.m_state & st_deferred) != 0) {
            std::replace(m_deferred.begin(), m_deferred.end(), &op, static_cast<io_op*>(nullptr));
            discard(op, op.m_result);
            op.m_state = 0;
            return;
        }
        if ((op.m_state & st_in_flight) == 0) {
            return;
        }
        op.m_state |= st_forgotten;
        send_cancel(op);
        while ((op.m_state & st_in_flight) != 0) {
            int r = start();
            if (r == 0) {
                r = io_uring_submit_and_wait(&m_ring, 1);
            }
            if (r < 0 && !transient(r)) {
                // Returning would let the frame go while the kernel may still
                // write into its buffer.
                std::fprintf(stderr,
                             "coio: io_uring: cannot wait for a cancelled operation to release "
                             "its buffer (%s)\n",
                             std::strerror(-r));
                std::abort();
            }
            reap(mode::deliver); // other ops complete normally meanwhile
        }
    }

    void close(int fd) noexcept override {
        if (fd < 0) {
            return;
        }
        if (static_cast<std::size_t>(fd) < m_table.size()) {
            entry& e = m_table[static_cast<std::size_t>(fd)];
            if (e.reader != nullptr || e.writer != nullptr) {
                detach_and_cancel(fd, e);
            }
        }
        ::close(fd);
    }

    void wait(std::chrono::nanoseconds timeout) override {
        if (const int r = start(); r < 0) {
            enter_failed(r);
        }
        arm_wake();
        if (deliver_deferred()) {
            timeout = std::chrono::nanoseconds{0};
        }
        int r = 0;
        if (timeout.count() == 0) {
            // Enter only to submit; reap() itself enters when the kernel flags
            // pending task work (IORING_SQ_TASKRUN) or a CQ overflow.
            if (io_uring_sq_ready(&m_ring) > 0) {
                r = io_uring_submit_and_get_events(&m_ring);
            }
        } else if (timeout.count() < 0) {
            r = io_uring_submit_and_wait(&m_ring, 1);
        } else {
            // One io_uring_enter with IORING_ENTER_EXT_ARG (5.11); older kernels
            // get a timeout SQE from liburing, whose CQE reap() ignores.
            __kernel_timespec ts{};
            ts.tv_sec = static_cast<long long>(timeout.count() / 1'000'000'000);
            ts.tv_nsec = static_cast<long long>(timeout.count() % 1'000'000'000);
            io_uring_cqe* cqe = nullptr;
            r = io_uring_submit_and_wait_timeout(&m_ring, &cqe, 1, &ts, nullptr);
        }
        if (r < 0 && !transient(r)) {
            enter_failed(r);
        }
        reap(mode::deliver);
    }

    void wake() noexcept override {
        const std::uint64_t one = 1;
        [[maybe_unused]] ssize_t r = ::write(m_wake.get(), &one, sizeof one);
    }

    [[nodiscard]] std::size_t registrations() const noexcept override { return m_registered; }

private:
    struct entry {
        io_op* reader = nullptr; // recv or accept in flight
        io_op* writer = nullptr; // send or connect in flight
    };
    enum class mode : std::uint8_t { deliver, defer, drop };

    // ETIME: the wait timed out; EINTR: a signal; EAGAIN / EBUSY: the kernel
    // could not take every SQE now (they stay queued) or the CQ is overflowing.
    static bool transient(int r) noexcept {
        return r == -ETIME || r == -EINTR || r == -EAGAIN || r == -EBUSY;
    }

    [[noreturn]] static void enter_failed(int r) {
        if (r == -EEXIST) {
            throw std::logic_error("coio: an io_uring event loop was driven from a second "
                                   "thread; one thread must run it (the first that did)");
        }
        throw std::runtime_error(sys::errno_message("io_uring_enter", -r));
    }

    [[nodiscard]] bool on_issuer_thread() const noexcept {
        return (m_flags & IORING_SETUP_SINGLE_ISSUER) == 0 || !m_started ||
               m_issuer == this_thread_serial();
    }

    // Makes the calling thread the ring's issuer before anything is queued
    // or entered. A SINGLE_ISSUER ring created with R_DISABLED is enabled
    // here, by the first thread that uses it. A loop run by one thread and
    // then by another gets a fresh ring if nothing is in flight; otherwise
    // the ops belong to the first thread's ring: -EEXIST, as the kernel says.
    int start() noexcept {
        if (m_started) {
            if (on_issuer_thread()) {
                return 0;
            }
            if (m_in_flight > 0) {
                return -EEXIST;
            }
            if (const int r = rebuild(); r < 0) {
                return r;
            }
        }
        const int r = io_uring_register(m_ring.ring_fd, IORING_REGISTER_ENABLE_RINGS, nullptr, 0);
        if (r < 0) {
            return r;
        }
        m_issuer = this_thread_serial();
        m_started = true;
        return 0;
    }

    // Swaps in a new ring. Only the wake read can be pending on the old one;
    // closing the ring cancels it, and the eventfd keeps any wake() count.
    int rebuild() noexcept {
        io_uring fresh{};
        unsigned flags = 0;
        unsigned cq = 0;
        if (const int e = init_ring(fresh, flags, cq); e != 0) {
            return -e;
        }
        io_uring_queue_exit(&m_ring);
        m_ring = fresh;
        m_flags = flags;
        m_cq_entries = cq;
        m_started = (m_flags & IORING_SETUP_R_DISABLED) == 0;
        m_wake_armed = false;
        return 0;
    }

    static void prep(io_uring_sqe* sqe, io_op& op) noexcept {
        const auto len = static_cast<unsigned>(std::min<std::size_t>(op.m_len, INT_MAX));
        switch (op.m_code) {
        case op_code::recv:
            io_uring_prep_recv(sqe, op.m_fd, op.m_buf, len, 0);
            break;
        case op_code::send:
            io_uring_prep_send(sqe, op.m_fd, op.m_buf, len, MSG_NOSIGNAL);
            break;
        case op_code::recvmsg:
            io_uring_prep_recvmsg(sqe, op.m_fd, static_cast<msghdr*>(op.m_buf), 0);
            break;
        case op_code::sendmsg:
            io_uring_prep_sendmsg(sqe, op.m_fd, static_cast<const msghdr*>(op.m_buf), MSG_NOSIGNAL);
            break;
        case op_code::accept:
            io_uring_prep_accept(sqe, op.m_fd, static_cast<sockaddr*>(op.m_addr), op.m_addr_len,
                                 SOCK_NONBLOCK | SOCK_CLOEXEC);
            break;
        case op_code::connect:
            io_uring_prep_connect(sqe, op.m_fd, static_cast<const sockaddr*>(op.m_addr),
                                  *op.m_addr_len);
            break;
        }
    }

    // A free SQE, pushing the queued ones to the kernel if the SQ is full.
    // Null only if the kernel refuses them for good.
    io_uring_sqe* get_sqe() noexcept {
        for (int tries = 0; tries < 16; ++tries) {
            if (io_uring_sqe* sqe = io_uring_get_sqe(&m_ring)) {
                return sqe;
            }
            if (flush() < 0) {
                return nullptr;
            }
        }
        return nullptr;
    }

    // Hands every queued SQE to the kernel now. Returns 0 or -errno. With
    // `settle`, the kernel also runs the completions that are pending as task
    // work (IORING_ENTER_GETEVENTS), so a cancelled op has dropped its
    // reference to its file when this returns (see detach_and_cancel); the
    // CQEs stay in the ring for the next wait().
    int flush(bool settle = false) noexcept {
        if (const int r = start(); r < 0) {
            return r;
        }
        for (int tries = 0; settle || io_uring_sq_ready(&m_ring) > 0; ++tries) {
            const int r =
                settle ? io_uring_submit_and_get_events(&m_ring) : io_uring_submit(&m_ring);
            if (r >= 0 || r == -EINTR) {
                settle = settle && io_uring_sq_ready(&m_ring) > 0;
                continue;
            }
            if (!transient(r) || tries > 1000) {
                return r;
            }
            // Pre-5.19 kernels refuse SQEs (EBUSY) while CQEs wait in the
            // overflow list: make room in the CQ ring. The completions found
            // are delivered by the next wait(), never from inside submit().
            reap(mode::defer);
        }
        return 0;
    }

    void send_cancel(io_op& op) noexcept {
        if ((op.m_state & st_cancel_sent) != 0) {
            return;
        }
        if (io_uring_sqe* sqe = get_sqe()) {
            io_uring_prep_cancel64(sqe, op_data(op), 0);
            io_uring_sqe_set_data64(sqe, tag_cancel);
            op.m_state |= st_cancel_sent;
        }
    }

    // close(fd) with ops in flight. They are unlinked from fd (a new socket
    // may get the number at once), each is cancelled by its user_data, and
    // they end with -ECANCELED whatever the kernel reports. Not
    // IORING_ASYNC_CANCEL_FD: it matches the *file*, so it would also cancel
    // ops on a dup of this socket that stays open; the ops on fd are known
    // here anyway (at most a reader and a writer), and cancel64 works on
    // every kernel this backend accepts.
    // Then the SQEs go to the kernel before ::close(fd), for two reasons:
    //  - an op SQE still in the SQ names the fd by number: after ::close()
    //    and a reuse of the number it would act on the new socket;
    //  - an in-flight op holds a reference to the file, so ::close() alone
    //    would not close the socket (a listener would still complete
    //    handshakes). flush(settle) runs the cancellations to the end, which
    //    with DEFER_TASKRUN happens only inside io_uring_enter(GETEVENTS).
    void detach_and_cancel(int fd, entry& e) noexcept {
        for (io_op* op : {e.reader, e.writer}) {
            if (op != nullptr) {
                op->m_state |= st_detached;
                send_cancel(*op);
            }
        }
        e = entry{};
        --m_registered;
        if (const int r = flush(true); r < 0) {
            std::fprintf(stderr, "coio: io_uring: cannot submit the cancellation of fd %d: %s\n",
                         fd, std::strerror(-r));
        }
    }

    void arm_wake() {
        if (m_wake_armed) {
            return;
        }
        if (io_uring_sqe* sqe = get_sqe()) {
            io_uring_prep_read(sqe, m_wake.get(), &m_wake_count, sizeof m_wake_count, 0);
            io_uring_sqe_set_data64(sqe, tag_wake);
            m_wake_armed = true;
        }
    }

    // Takes every CQE there is, one at a time: each is copied out and
    // consumed before it is handled, because handling may re-enter the
    // backend (a completion callback that submits, or forgets an op whose CQE
    // is next in the ring: that forget() must still find it there).
    void reap(mode how) noexcept {
        // Bounded, so completions racing in cannot keep this from returning.
        for (std::size_t n = 0; n <= m_cq_entries; ++n) {
            // Enters the kernel itself when the CQ ring is empty and
            // IORING_SQ_TASKRUN or IORING_SQ_CQ_OVERFLOW is set; skips
            // liburing's own timeout CQEs.
            io_uring_cqe* cqe = nullptr;
            if (io_uring_peek_cqe(&m_ring, &cqe) != 0 || cqe == nullptr) {
                break;
            }
            const std::uint64_t data = cqe->user_data;
            const int res = cqe->res;
            io_uring_cqe_seen(&m_ring, cqe);
            handle(data, res, how);
        }
    }

    void handle(std::uint64_t data, int res, mode how) noexcept {
        if (data == tag_wake) {
            m_wake_armed = false; // re-armed by the next wait()
            return;
        }
        io_op* p = op_from(data);
        if (p == nullptr) {
            return; // a cancel request's own CQE, or liburing's timeout
        }
        io_op& op = *p;
        --m_in_flight;
        if ((op.m_state & st_detached) != 0) {
            discard(op, res); // close() promised -ECANCELED, even if the op won
            res = -ECANCELED;
        } else {
            untrack(op);
            if (res == -EINTR && (op.m_state & st_cancel_sent) != 0) {
                res = -ECANCELED; // cancelled while running in an io-wq worker
            }
        }
        if ((op.m_state & st_forgotten) != 0 || how == mode::drop) {
            discard(op, res);
            op.m_state = 0;
            return;
        }
        op.m_result = res;
        if (how == mode::defer) {
            op.m_state = st_deferred;
            m_deferred.push_back(&op);
            return;
        }
        op.m_state = 0;
        m_sink.complete(op);
    }

    // Delivers ops reaped outside wait(); true if there were any.
    bool deliver_deferred() noexcept {
        if (m_deferred.empty()) {
            return false;
        }
        // By index: a completion may forget() a later entry (nulled) or defer
        // more (appended).
        for (std::size_t i = 0; i < m_deferred.size(); ++i) {
            if (io_op* op = std::exchange(m_deferred[i], nullptr)) {
                op->m_state = 0;
                m_sink.complete(*op);
            }
        }
        m_deferred.clear();
        return true;
    }

    // A result nobody will see: an accepted connection must not leak.
    static void discard(io_op& op, int res) noexcept {
        if (op.m_code == op_code::accept && res >= 0) {
            ::close(res);
        }
    }

    void untrack(io_op& op) noexcept {
        entry& e = m_table[static_cast<std::size_t>(op.m_fd)];
        (e.reader == &op ? e.reader : e.writer) = nullptr;
        if (e.reader == nullptr && e.writer == nullptr) {
            --m_registered;
        }
    }

    completion_sink& m_sink;
    io_uring m_ring{};
    unsigned m_flags = 0;
    unsigned m_cq_entries = 0;
    bool m_started = false;
    std::uint64_t m_issuer = 0; // this_thread_serial() of the issuer, once m_started
    bool m_wake_armed = false;
    std::uint64_t m_wake_count = 0; // the kernel writes here; lives as long as the ring
    sys::unique_fd m_wake;
    std::vector<entry> m_table; // by fd number
    std::vector<io_op*> m_deferred;
    std::size_t m_registered = 0; // fds with an op in m_table
    std::size_t m_in_flight = 0;  // op SQEs whose CQE has not been reaped
};

std::string probe_once() {
    io_uring ring{};
    const int r = io_uring_queue_init(4, &ring, 0);
    if (r < 0) {
        std::string why = sys::errno_message("io_uring_queue_init", -r);
        // EPERM comes from a seccomp filter (container profiles) or from
        // kernel.io_uring_disabled (6.6): 1 = only CAP_SYS_ADMIN or the
        // io_uring_group, 2 = nobody. Name the sysctl if it is set.
        if (std::FILE* f = std::fopen("/proc/sys/kernel/io_uring_disabled", "re")) {
            int v = 0;
            if (std::fscanf(f, "%d", &v) == 1 && v != 0) {
                why += " (kernel.io_uring_disabled=" + std::to_string(v) + ")";
            }
            std::fclose(f);
        }
        return why;
    }
    std::string why = kernel_gaps(ring, ring.features);
    io_uring_queue_exit(&ring);
    return why;
}

} // namespace

std::string uring_probe() {
    static const std::string why = probe_once();
    return why;
}

std::unique_ptr<backend> make_uring_backend(completion_sink& sink) {
    return std::make_unique<uring_backend>(sink);
}

} // namespace coio::detail
