// lib/backend/uring_setup.cpp - io_uring ring creation, the feature tiers,
// the availability probe and the issuer thread (see uring_backend.hpp).
#include "backend/uring_backend.hpp"

#include <sys/eventfd.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <stdexcept>
#include <string_view>

namespace coio::detail {

namespace {

constexpr unsigned sq_size = 4096;
// 16,384 CQEs (256 KiB): the completions of one iteration for that many
// sockets. The CQ's pages count in RSS once the ring has wrapped over them, so
// the kernel's maximum (65,536, 1 MiB) cost up to 100 bytes per idle
// connection at 10,000. Beyond that IORING_FEAT_NODROP keeps the excess in the
// kernel until the next io_uring_enter(GETEVENTS) flushes it (see reap()):
// slower, never lost (tests/backend/uring_test.cpp overflows a 16-entry CQ).
constexpr unsigned cq_size = 16384;

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

// Names the calling thread, uniquely for the life of the process: the kernel
// binds a SINGLE_ISSUER ring to a task, and pthread_t values and TIDs of
// finished threads are reused (a joined thread's successor often gets the
// same pthread_t).
std::uint64_t this_thread_serial() noexcept {
    static std::atomic<std::uint64_t> next{0};
    thread_local const std::uint64_t serial = ++next;
    return serial;
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

// IORING_OP_MSG_RING (5.18) and IOSQE_CQE_SKIP_SUCCESS (5.17), for
// wake_other(); COIO_URING_MSG_RING=0 turns it off (the eventfd then wakes
// every loop, as on older kernels).
// The kernel is asked once per process (the first ring's probe), not per loop.
bool msg_ring_works(io_uring& ring) {
    if (const char* knob = std::getenv("COIO_URING_MSG_RING");
        knob != nullptr && std::string_view(knob) == "0") {
        return false;
    }
    static const bool supported = [&ring] {
        if ((ring.features & IORING_FEAT_CQE_SKIP) == 0) {
            return false;
        }
        io_uring_probe* p = io_uring_get_probe_ring(&ring);
        if (p == nullptr) {
            return false;
        }
        const bool ok = io_uring_opcode_supported(p, IORING_OP_MSG_RING) != 0;
        io_uring_free_probe(p);
        return ok;
    }();
    return supported;
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

uring_backend::uring_backend(completion_sink& sink)
    : m_sink(sink), m_small(small_buffer_size, 0, pool_max_buffers()),
      m_big(big_buffer_size, 1, pool_max_big_buffers()), m_single(small_buffer_size, 1U << 30),
      m_trim_period(pool_trim_period()) {
    if (const int e = init_ring(m_ring, m_flags, m_cq_entries); e != 0) {
        throw std::runtime_error(sys::errno_message("io_uring_queue_init", e));
    }
    if (std::string why = kernel_gaps(m_ring, m_ring.features); !why.empty()) {
        io_uring_queue_exit(&m_ring);
        throw std::runtime_error(why);
    }
    m_started = (m_flags & IORING_SETUP_R_DISABLED) == 0;
    m_msg_ring = msg_ring_works(m_ring);
    publish_ring(m_started);
    // Blocking on purpose: io_uring fails a read on an O_NONBLOCK file
    // with -EAGAIN instead of waiting for it to become readable.
    m_wake.reset(::eventfd(0, EFD_CLOEXEC));
    if (!m_wake) {
        const int e = errno;
        io_uring_queue_exit(&m_ring);
        throw std::runtime_error(sys::errno_message("eventfd", e));
    }
    if (const char* knob = std::getenv("COIO_URING_RW_NOWAIT"); knob != nullptr) {
        m_rw_nowait = std::string_view(knob) == "1"; // the -EAGAIN path of pipe reads and writes
    }
    if (std::getenv("COIO_URING_DEBUG") != nullptr) { // the flags in effect, for diagnosis
        std::fprintf(stderr, "coio: io_uring setup flags 0x%x, sq %u, cq %u, features 0x%x\n",
                     m_flags, m_ring.sq.ring_entries, m_cq_entries, m_ring.features);
    }
}

// Ops still in flight here belong to frames that outlive the loop (leaked on
// purpose); multishot recvs belong to sockets still open. Cancel them and the
// wake read, and reap until the kernel has let go of every buffer before the
// ring and the buffer ring go away.
uring_backend::~uring_backend() {
    publish_ring(false); // no other loop sends to this ring from now on
    // Only the issuer may reap a SINGLE_ISSUER ring. If the loop is torn
    // down by another thread with just the wake read left, closing the
    // ring cancels that read (a poll-armed read on an empty eventfd).
    const bool busy = m_in_flight > 0 || m_multishots > 0;
    const bool idle_elsewhere = !busy && !on_issuer_thread();
    if (m_started && !idle_elsewhere && (busy || m_wake_armed)) {
        for (entry& e : m_table) {
            for (io_op* op : {e.reader, e.writer}) {
                if (op != nullptr && (op->m_state & st_in_flight) != 0) {
                    send_cancel(*op);
                }
            }
        }
        cancel_multishots();
        if (m_wake_armed) {
            cancel_data(tag_wake);
        }
        while (m_in_flight > 0 || m_multishots > 0 || m_wake_armed) {
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
    if (m_multishots == 0) {
        m_small.teardown(m_ring);
        m_big.teardown(m_ring);
    } else {
        // The kernel may still pick ring buffers: leave them mapped (leaked)
        // rather than let it write into memory that is reused.
        std::fprintf(stderr,
                     "coio: io_uring teardown left %zu multishot recvs; their buffers "
                     "stay mapped\n",
                     m_multishots);
        m_small.abandon();
        m_big.abandon();
    }
    io_uring_queue_exit(&m_ring);
}

bool uring_backend::on_issuer_thread() const noexcept {
    return (m_flags & IORING_SETUP_SINGLE_ISSUER) == 0 || !m_started ||
           m_issuer == this_thread_serial();
}

// Makes the calling thread the ring's issuer before anything is queued or
// entered. A SINGLE_ISSUER ring created with R_DISABLED is enabled here, by
// the first thread that uses it. A loop run by one thread and then by another
// gets a fresh ring if nothing is in flight; otherwise the ops belong to the
// first thread's ring: -EEXIST, as the kernel says.
int uring_backend::start() noexcept {
    if (m_started) {
        if (on_issuer_thread()) {
            return 0;
        }
        if (m_in_flight > 0 || m_multishots > 0 || m_parked > 0 || buffers_out() > 0) {
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
    publish_ring(true);
    return 0;
}

void uring_backend::publish_ring(bool enabled) noexcept {
    std::lock_guard lock(m_msg_mutex);
    m_msg_fd = enabled ? m_ring.ring_fd : -1;
}

// Sends the target a CQE through this ring (see uring_backend.hpp). The SQE
// goes to the kernel before this returns, under the target's m_msg_mutex: if
// it cannot (a refused or partial submit), it becomes a NOP, so that it never
// reaches a ring that has gone since. The kernel holds the target's file from
// submission on. A failed send (its CQE, tag_msg, is ignored) loses no
// wake-up: it fails only if the target's CQ ring overflows (the target then
// has completions to reap and does not sleep) or the target's ring is being
// torn down.
bool uring_backend::wake_other(backend& target) noexcept {
    // This ring must be running on this thread already: start() could take
    // this backend's own m_msg_mutex, and no other lock may be taken inside
    // the target's.
    if (!m_msg_ring || !m_started || !on_issuer_thread() || target.name() != name()) {
        return false;
    }
    auto& t = static_cast<uring_backend&>(target);
    if (!t.m_msg_ring) {
        return false;
    }
    std::lock_guard lock(t.m_msg_mutex);
    if (t.m_msg_fd < 0) {
        return false; // not enabled yet (its first wait() enables it), or gone
    }
    io_uring_sqe* sqe = get_sqe();
    if (sqe == nullptr) {
        return false;
    }
    io_uring_prep_msg_ring(sqe, t.m_msg_fd, 0, tag_msg, 0);
    io_uring_sqe_set_data64(sqe, tag_msg);
    io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
    const int ready = static_cast<int>(io_uring_sq_ready(&m_ring));
    if (io_uring_submit(&m_ring) == ready) {
        return true; // every queued SQE, this one last, was consumed
    }
    io_uring_prep_nop(sqe);
    io_uring_sqe_set_data64(sqe, tag_msg);
    io_uring_sqe_set_flags(sqe, IOSQE_CQE_SKIP_SUCCESS);
    return false;
}

// Swaps in a new ring. Only the wake read can be pending on the old one;
// closing the ring cancels it, and the eventfd keeps any wake() count. The
// buffer ring, registered with the old ring, is set up again when needed.
int uring_backend::rebuild() noexcept {
    io_uring fresh{};
    unsigned flags = 0;
    unsigned cq = 0;
    if (const int e = init_ring(fresh, flags, cq); e != 0) {
        return -e;
    }
    publish_ring(false);
    m_small.teardown(m_ring);
    m_big.teardown(m_ring);
    m_big_failed = false;
    if (m_pool_mode == pool_mode::ring) {
        m_pool_mode = pool_mode::unknown;
    }
    io_uring_queue_exit(&m_ring);
    m_ring = fresh;
    m_flags = flags;
    m_cq_entries = cq;
    m_started = (m_flags & IORING_SETUP_R_DISABLED) == 0;
    m_wake_armed = false;
    publish_ring(m_started);
    return 0;
}

std::string uring_probe() {
    static const std::string why = probe_once();
    return why;
}

std::unique_ptr<backend> make_uring_backend(completion_sink& sink) {
    return std::make_unique<uring_backend>(sink);
}

} // namespace coio::detail
