// lib/backend/readiness.hpp - the one implementation of park -> retry ->
// cancel -> close that epoll and kqueue share. A backend file only wraps its
// syscalls in a Poller (as mio's selectors do); the discipline lives here.
//
// Discipline (tokio's Registration::async_io, seastar's epoll backend):
//  - submit() tries the operation's syscall first when the fd's readiness bit
//    for that direction says it may succeed; it parks the op on its fd only
//    when the syscall would block (or the bit is clear), and registers the fd
//    with the poller then - once per direction, edge-triggered - so a socket
//    costs at most two registrations for its whole life.
//  - When the poller reports the fd ready, the parked op is *scheduled*: it
//    goes into the loop's ready queue (completion_sink::schedule), and its
//    syscall runs when the loop reaches it there (run_ready), right before
//    its coroutine is resumed. So a read takes its pool buffer (and touches
//    the data) only when the reader is about to use it: a thousand sockets
//    ready in one wakeup lend one or two buffers at a time instead of a
//    thousand, and the data is hot in the cache when the reader runs.
//  - Readiness bits (issue #6: a raw loop makes one recv per request, trying
//    first would add an EAGAIN one): each fd has a readable and a writable
//    bit, set by an event and cleared by EAGAIN - and, on a stream socket, by
//    a short transfer (a TCP or Unix stream recv or send that moved less than
//    asked saw the queue empty or the send buffer full). An op whose bit is
//    clear parks without the syscall. No edge is lost: a bit is only cleared
//    by a syscall that saw the socket drained, and anything that comes later
//    (data, FIN, RST, send space) raises a new event; registering an fd
//    reports the readiness it has. One exception: a FIN or an error that came
//    with the data is announced by the same event as the data, and the short
//    read stops before it; nothing new will announce it. So once an event
//    said hang-up or error, reads clear the bit only on EAGAIN. Datagram
//    sockets and accept clear only on EAGAIN (a short datagram says nothing
//    about the next one); connect always tries. Non-socket fds (pipes, FIFOs,
//    ttys: read, write, read_pooled) clear only on EAGAIN too: they are not
//    stream sockets. wait_readable is a poll(2) of the fd with no timeout.
//  - recv_pooled (read_pooled: the same with read(2)) takes a pool buffer
//    (buffer_pool.hpp) only for the recv itself, big or small as the fd's
//    last read suggests, and gives it back at once if nothing came. If every
//    buffer is lent, the reader waits in a FIFO and is scheduled again as
//    buffers come back.
//  - cancel() and close() finish parked ops at once with -ECANCELED (a
//    scheduled op keeps its place in the ready queue and is delivered from
//    there, so it is resumed exactly once); forget() takes the op out of the
//    table and the queue. Events carry the fd's generation, which close()
//    bumps, so an event for a closed fd whose number was reused is dropped.
//
// Poller requirements (EpollPoller in epoll.cpp, KqueuePoller in kqueue.cpp):
//   static constexpr const char* name;
//   int watch(int fd, std::uint32_t gen, bool write, std::uint8_t& watched)
//       register fd for a direction if `watched` says it is not yet (the
//       poller keeps its own bits in `watched`); 0 or -errno.
//   template <class F> void wait(std::chrono::nanoseconds timeout, F on_event)
//       block up to timeout (< 0: no limit, 0: poll; never rounded down to a
//       busy loop); call on_event(fd, gen, readiness_event) per event.
//   void wake() noexcept   thread-safe; ends a concurrent or the next wait().
#pragma once

#include "backend/backend.hpp"
#include "backend/buffer_pool.hpp"
#include "backend/readiness_ops.hpp"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string_view>
#include <utility>
#include <vector>

namespace coio::detail {

// What a poller reports for one fd.
struct readiness_event {
    bool readable; // data, EOF or an error to read
    bool writable; // send space or an error
    bool hangup;   // the peer closed or the socket failed (EPOLLRDHUP/HUP/ERR, EV_EOF)
};

template <class Poller>
class readiness_backend final : public backend {
public:
    explicit readiness_backend(completion_sink& sink) : m_sink(sink) {}

    [[nodiscard]] std::string_view name() const noexcept override { return Poller::name; }

    bool submit(io_op& op) override {
        op.m_state = 0;
        if (op.m_fd < 0) {
            op.m_result = -EBADF;
            return true;
        }
        entry& e = slot_for(op.m_fd);
        const bool writes = is_write_side(op.m_code);
        io_op*& parked = writes ? e.writer : e.reader;
        if (parked != nullptr) {
            op.m_result = -EBUSY; // another op of the same direction is waiting
            return true;
        }
        int r = -EAGAIN;
        if (op.m_code == op_code::connect || (writes ? e.writable : e.readable)) {
            r = attempt(op, e);
            if (r != -EAGAIN && !pool_empty(op, r)) {
                op.m_result = r;
                return true;
            }
        }
        if ((op.m_flags & op_nowait) != 0) {
            op.m_result = -EAGAIN; // it would have to wait
            return true;
        }
        if (const int w = watch(op.m_fd, e, writes); w < 0) {
            op.m_result = w;
            return true;
        }
        parked = &op;
        if (pool_empty(op, r)) {
            starve(op.m_fd, e);
        }
        return false;
    }

    bool run_ready(io_op& op) noexcept override {
        if ((op.m_state & st_finished) != 0) {
            op.m_state = 0; // cancelled or closed while queued: the result is set
            return true;
        }
        op.m_state &= static_cast<std::uint8_t>(~st_scheduled);
        entry& e = m_fds[static_cast<std::size_t>(op.m_fd)];
        const int r = attempt(op, e);
        if (r == -EAGAIN) {
            if ((op.m_code == op_code::recv_pooled || op.m_code == op_code::read_pooled) &&
                e.was_starved) {
                // It was woken for a buffer that someone else may use now.
                e.was_starved = false;
                wake_starved();
            }
            return false; // the next event schedules it again
        }
        if (pool_empty(op, r)) {
            starve(op.m_fd, e);
            return false;
        }
        e.was_starved = false;
        (is_write_side(op.m_code) ? e.writer : e.reader) = nullptr;
        op.m_result = r;
        op.m_state = 0;
        return true;
    }

    void cancel(io_op& op) noexcept override {
        if (!unpark(op)) {
            return;
        }
        op.m_result = -ECANCELED;
        if ((op.m_state & st_scheduled) != 0) {
            op.m_state |= st_finished; // delivered from its place in the queue
        } else {
            m_sink.complete(op);
        }
    }

    void forget(io_op& op) noexcept override {
        unpark(op);
        if ((op.m_state & st_scheduled) != 0) {
            m_sink.unschedule(op);
        }
        op.m_state = 0;
    }

    void close(int fd) noexcept override {
        if (fd < 0) {
            return;
        }
        if (static_cast<std::size_t>(fd) < m_fds.size()) {
            entry& e = m_fds[static_cast<std::size_t>(fd)];
            for (io_op** slot : {&e.reader, &e.writer}) {
                if (io_op* op = std::exchange(*slot, nullptr)) {
                    op->m_result = -ECANCELED;
                    if ((op->m_state & st_scheduled) != 0) {
                        op->m_state |= st_finished;
                    } else {
                        m_sink.complete(*op);
                    }
                }
            }
            if (e.watched != 0) {
                --m_registered;
            }
            const std::uint32_t gen = e.gen + 1;
            e = entry{};
            e.gen = gen;
        }
        ::close(fd);
    }

    void wait(std::chrono::nanoseconds timeout) override {
        // Memory beyond recent demand goes back within pool_trim_period, also
        // when the loop has nothing else to wake it up for.
        const std::chrono::nanoseconds trim = m_pool.maintain(std::chrono::steady_clock::now());
        if (trim.count() >= 0 && (timeout.count() < 0 || trim < timeout)) {
            timeout = trim;
        }
        m_poller.wait(timeout, [this](int fd, std::uint32_t gen, readiness_event ev) noexcept {
            dispatch(fd, gen, ev);
        });
    }

    void wake() noexcept override { m_poller.wake(); }

    [[nodiscard]] std::size_t registrations() const noexcept override { return m_registered; }

    void release_buffer(std::uint32_t id) noexcept override {
        m_pool.give_back(id);
        if (m_starved_head < m_starved.size()) {
            wake_starved();
        }
    }

    [[nodiscard]] std::size_t buffers_out() const noexcept override { return m_pool.out(); }
    [[nodiscard]] std::size_t buffer_bytes() const noexcept override { return m_pool.bytes(); }

private:
    // io_op::m_state bits (readiness_ops.hpp uses connect_in_progress = 4).
    static constexpr std::uint8_t st_scheduled = 1; // in the loop's ready queue
    static constexpr std::uint8_t st_finished = 2;  // cancelled/closed while scheduled

    struct entry {
        io_op* reader = nullptr;
        io_op* writer = nullptr;
        std::uint32_t gen = 0;
        std::uint8_t watched = 0; // the poller's registration bits
        bool readable : 1 = true; // see "Readiness bits" above
        bool writable : 1 = true;
        bool stream : 1 = false;      // SOCK_STREAM, known once registered
        bool hangup : 1 = false;      // an event reported hang-up or error
        bool big : 1 = false;         // the last read filled a small buffer: read big next
        bool starved : 1 = false;     // in m_starved, waiting for a pool buffer
        bool was_starved : 1 = false; // scheduled because a buffer came back
    };
    // 24 bytes: one per fd number up to the highest open one.
    static_assert(sizeof(void*) != 8 || sizeof(entry) == 24);

    entry& slot_for(int fd) {
        const auto i = static_cast<std::size_t>(fd);
        if (i >= m_fds.size()) {
            // Only up to this fd: the capacity still grows geometrically,
            // and the entries past the highest fd are never touched.
            m_fds.resize(i + 1);
        }
        return m_fds[i];
    }

    int watch(int fd, entry& e, bool writes) noexcept {
        const bool first = e.watched == 0;
        if (const int r = m_poller.watch(fd, e.gen, writes, e.watched); r < 0) {
            return r;
        }
        if (first && e.watched != 0) {
            ++m_registered;
            e.stream = readiness::is_stream_socket(fd);
        }
        return 0;
    }

    // recv_pooled's or read_pooled's -ENOBUFS: every pool buffer is lent, the
    // reader waits for one. From any other call ENOBUFS is the kernel's error and ends the op.
    static bool pool_empty(const io_op& op, int r) noexcept {
        return r == -ENOBUFS &&
               (op.m_code == op_code::recv_pooled || op.m_code == op_code::read_pooled);
    }

    // One try of op's syscall; keeps e's readiness bits. A call interrupted
    // by a signal is made again (a connect's EINTR is "in progress": perform).
    int attempt(io_op& op, entry& e) noexcept {
        std::size_t asked = 0; // for a recv or send: how much it could have moved
        int r = 0;
        if (op.m_code == op_code::recv_pooled || op.m_code == op_code::read_pooled) {
            const bool small_only = (op.m_flags & op_small) != 0;
            do {
                r = recv_into_pool(op, m_pool, *this, e.big && !small_only);
            } while (r == -EINTR);
            if (r > 0) {
                asked = read_buffers::size_of(op.m_arg.lent.id);
                e.big = !small_only && static_cast<std::size_t>(r) >= small_buffer_size;
            }
        } else {
            if (op.m_code == op_code::recv || op.m_code == op_code::send ||
                op.m_code == op_code::read || op.m_code == op_code::write) {
                asked = op.m_arg.buf.size;
            }
            do {
                r = readiness::perform(op);
            } while (r == -EINTR);
        }
        const bool writes = is_write_side(op.m_code);
        const bool transfer = asked > 0;
        // After a hang-up or an error was reported, a short read may leave the
        // EOF or the error behind with no event to come: only EAGAIN clears.
        const bool short_clears = e.stream && transfer && (writes || !e.hangup);
        if (r == -EAGAIN || (short_clears && r > 0 && static_cast<std::size_t>(r) < asked)) {
            if (writes) { // (no ?: on bit-fields: clang 14 cannot compile it)
                e.writable = false;
            } else {
                e.readable = false;
            }
        }
        return r;
    }

    void dispatch(int fd, std::uint32_t gen, readiness_event ev) noexcept {
        if (fd < 0 || static_cast<std::size_t>(fd) >= m_fds.size()) {
            return;
        }
        entry& e = m_fds[static_cast<std::size_t>(fd)];
        if (e.watched == 0 || e.gen != gen) {
            return; // stale: the fd was closed since this registration
        }
        e.hangup = e.hangup || ev.hangup;
        if (ev.readable) {
            e.readable = true;
            if (!e.starved) { // a starved reader waits for a buffer, not for data
                schedule(e.reader);
            }
        }
        if (ev.writable) {
            e.writable = true;
            schedule(e.writer);
        }
    }

    void schedule(io_op* op) noexcept {
        if (op != nullptr && (op->m_state & st_scheduled) == 0) {
            op->m_state |= st_scheduled;
            m_sink.schedule(*op);
        }
    }

    // Takes `op` off its fd if it is parked there; false if it is not.
    bool unpark(io_op& op) noexcept {
        if (op.m_fd < 0 || static_cast<std::size_t>(op.m_fd) >= m_fds.size()) {
            return false;
        }
        entry& e = m_fds[static_cast<std::size_t>(op.m_fd)];
        for (io_op** slot : {&e.reader, &e.writer}) {
            if (*slot == &op) {
                *slot = nullptr;
                e.starved = false; // its FIFO place is skipped
                return true;
            }
        }
        return false;
    }

    // fd's reader found every buffer lent: it waits in the FIFO (once).
    void starve(int fd, entry& e) noexcept {
        if (e.starved) {
            return;
        }
        try {
            m_starved.push_back(fd);
        } catch (...) {
            std::fprintf(stderr, "coio: %s: out of memory queueing a starved reader\n",
                         Poller::name);
            std::abort();
        }
        e.starved = true;
    }

    // A buffer is free: schedule the longest-starved reader still waiting.
    void wake_starved() noexcept {
        while (m_starved_head < m_starved.size()) {
            entry& e = m_fds[static_cast<std::size_t>(m_starved[m_starved_head++])];
            if (!e.starved) {
                continue; // closed or cancelled since
            }
            e.starved = false;
            if (e.reader != nullptr) {
                e.was_starved = true;
                schedule(e.reader);
                break;
            }
        }
        if (m_starved_head == m_starved.size()) {
            m_starved.clear();
            m_starved_head = 0;
        }
    }

    completion_sink& m_sink;
    Poller m_poller;
    std::vector<entry> m_fds; // by fd number, grown on demand
    std::size_t m_registered = 0;
    read_buffers m_pool;
    std::vector<int> m_starved; // fds whose reader waits for a pool buffer, FIFO
    std::size_t m_starved_head = 0;
};

} // namespace coio::detail
