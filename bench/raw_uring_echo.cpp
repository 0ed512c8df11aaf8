// raw_uring_echo — the smallest fast io_uring echo server we know how to write by hand with
// liburing 2.3: multishot accept, multishot recv into a provided-buffer ring, send straight
// out of the received buffer, one io_uring_submit_and_wait() per loop turn. It is the
// "limit" line for coio's io_uring backend, as raw_epoll_echo is for epoll.
//
// Run:   ./raw_uring_echo [--port 0] [--cpu 0] [--plain-setup] [--single-shot]
//                         [--buf-size BYTES] [--buf-count N]
//        prints "listening on 127.0.0.1:PORT"; stop with SIGINT/SIGTERM (exit 0).
//        --plain-setup skips SINGLE_ISSUER|DEFER_TASKRUN and --single-shot skips multishot
//        accept/recv, to exercise the fallbacks used on older kernels. --buf-size and
//        --buf-count size the provided buffers (defaults below; the count is a power of two).
// Try:   ./loadgen --port PORT --connections 100 --duration 2
// Needs: Linux >= 5.19 for the buffer ring; multishot recv needs 6.0, DEFER_TASKRUN 6.1.
#include "server_common.hpp"

#include <liburing.h>
#include <poll.h>
#include <sys/mman.h>

#include <memory>
#include <vector>

namespace {

constexpr unsigned k_sq_entries = 4096;
constexpr unsigned k_cq_entries = 16384; // multishot recv posts many CQEs per SQE
constexpr std::uint16_t k_buf_group = 1;
constexpr std::uint16_t k_no_buf = 0xffff; // end of a connection's send queue

struct uring_options {
    bool plain_setup = false;
    bool single_shot = false;
    // 1,024 buffers of 16 KiB (16 MiB). The ring hands its buffers out in turn, so every
    // buffer is touched once per round: fewer buffers keep that round inside the caches
    // and the TLB, and 16 KiB lets one completion carry four pipelined 4 KiB requests
    // (4 KiB buffers made the 100 x 16 x 4 KiB echo cost 2.7x the raw epoll loop's CPU per
    // request; 64 KiB x 2,048 or x 4,096 cost 3-4.5x, the working set past the caches).
    // 1,024 is still enough that 1,000 busy connections rarely run the ring dry.
    unsigned buf_size = 16 * 1024;
    unsigned buf_count = 1024; // a power of two, as the buffer ring requires; < k_no_buf
};

enum class op : std::uint8_t { accept = 1, recv = 2, send = 3, stop = 4 };

// user_data layout: the operation in bits 32..39, the fd in bits 0..31. An fd is closed only
// once nothing is in flight on it, so a completion can never name a reused fd.
std::uint64_t pack(op o, int fd) {
    return (static_cast<std::uint64_t>(o) << 32) | static_cast<std::uint32_t>(fd);
}
op op_of(std::uint64_t data) {
    return static_cast<op>((data >> 32) & 0xff);
}
int fd_of(std::uint64_t data) {
    return static_cast<int>(data & 0xffffffffu);
}

struct connection {
    // io_uring does not order two sends on one socket once either has to wait, and a
    // partial send must be finished before the next buffer goes out, so at most one send is
    // in flight and later buffers wait in arrival order: a FIFO linked through the server's
    // per-buffer `next` array, so queueing allocates nothing.
    std::uint16_t q_head = k_no_buf;
    std::uint16_t q_tail = k_no_buf;
    std::uint16_t cur_bid = 0;
    std::uint32_t cur_off = 0;
    std::uint32_t cur_len = 0;
    bool send_inflight = false;
    bool recv_armed = false;
    bool closing = false; // EOF or error seen: close once nothing is in flight
};

class server {
public:
    server(int listen_fd, int stop_fd, const uring_options& o)
        : m_listen_fd(listen_fd), m_stop_fd(stop_fd), m_multishot_accept(!o.single_shot),
          m_multishot_recv(!o.single_shot), m_buf_mask(io_uring_buf_ring_mask(o.buf_count)),
          m_buf_size(o.buf_size), m_buf_count(o.buf_count) {
        setup_ring(o.plain_setup);
        setup_buffers();
        arm_accept();
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_poll_add(sqe, m_stop_fd, POLLIN);
        io_uring_sqe_set_data64(sqe, pack(op::stop, m_stop_fd));
    }

    ~server() {
        // Evidence for whoever reads a benchmark log that the slow paths did (not) run.
        std::fprintf(stderr, "raw_uring_echo: buffer ring ran dry %llu times, %llu partial sends\n",
                     static_cast<unsigned long long>(m_enobufs),
                     static_cast<unsigned long long>(m_partial_sends));
        for (std::size_t fd = 0; fd < m_conns.size(); ++fd) {
            if (m_conns[fd]) {
                close(static_cast<int>(fd));
            }
        }
        io_uring_queue_exit(&m_ring); // cancels whatever is still in flight
        munmap(m_buf_ring, m_buf_count * sizeof(io_uring_buf));
        munmap(m_buffers, std::size_t{m_buf_count} * m_buf_size);
    }

    void run() {
        while (!m_stop) {
            if (m_returned > 0) {
                // Publish the buffers given back this turn with one store, then retry the
                // connections that ran dry (ENOBUFS) now that the ring has buffers again.
                io_uring_buf_ring_advance(m_buf_ring, m_returned);
                m_returned = 0;
                std::vector<int> parked;
                parked.swap(m_parked);
                for (int fd : parked) {
                    arm_recv(fd);
                }
            }
            int ret = io_uring_submit_and_wait(&m_ring, 1);
            if (ret < 0 && ret != -EINTR && ret != -EAGAIN && ret != -EBUSY) {
                errno = -ret;
                bench::die_errno("io_uring_submit_and_wait");
            }
            unsigned head = 0;
            unsigned seen = 0;
            io_uring_cqe* cqe = nullptr;
            io_uring_for_each_cqe(&m_ring, head, cqe) {
                handle(cqe->user_data, cqe->res, cqe->flags);
                ++seen;
            }
            io_uring_cq_advance(&m_ring, seen);
        }
    }

private:
    void setup_ring(bool plain_setup) {
        io_uring_params p{};
        int ret = -EINVAL;
        if (!plain_setup) {
            // One thread submits, and task work runs only when we wait: completions arrive
            // in batches at submit_and_wait instead of interrupting us (kernel >= 6.1).
            p.flags = IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_DEFER_TASKRUN | IORING_SETUP_CQSIZE;
            p.cq_entries = k_cq_entries;
            ret = io_uring_queue_init_params(k_sq_entries, &m_ring, &p);
        }
        if (ret < 0) {
            p = io_uring_params{};
            p.flags = IORING_SETUP_CQSIZE;
            p.cq_entries = k_cq_entries;
            ret = io_uring_queue_init_params(k_sq_entries, &m_ring, &p);
        }
        if (ret < 0) {
            errno = -ret;
            bench::die_errno("io_uring_queue_init_params");
        }
        std::fprintf(stderr, "raw_uring_echo: defer_taskrun=%d multishot=%d\n",
                     (p.flags & IORING_SETUP_DEFER_TASKRUN) ? 1 : 0, m_multishot_recv ? 1 : 0);
    }

    // liburing 2.4 wraps these steps as io_uring_setup_buf_ring(); Debian 12 ships 2.3,
    // so map the ring ourselves and register it.
    void setup_buffers() {
        void* mem = mmap(nullptr, m_buf_count * sizeof(io_uring_buf), PROT_READ | PROT_WRITE,
                         MAP_ANONYMOUS | MAP_PRIVATE, -1, 0);
        if (mem == MAP_FAILED) {
            bench::die_errno("mmap(buffer ring)");
        }
        m_buf_ring = static_cast<io_uring_buf_ring*>(mem);
        io_uring_buf_ring_init(m_buf_ring);
        io_uring_buf_reg reg{};
        reg.ring_addr = reinterpret_cast<std::uintptr_t>(mem);
        reg.ring_entries = m_buf_count;
        reg.bgid = k_buf_group;
        int ret = io_uring_register_buf_ring(&m_ring, &reg, 0);
        if (ret < 0) {
            errno = -ret;
            bench::die_errno("io_uring_register_buf_ring (needs Linux >= 5.19)");
        }
        // Populated up front: the ring hands buffers out in turn, so with lazily mapped
        // memory every buffer's first use is a page fault, for as long as it takes to go
        // round the whole pool once (seconds at a few connections). The pool is a fixed
        // cost of the server, resident from the start.
        mem = mmap(nullptr, std::size_t{m_buf_count} * m_buf_size, PROT_READ | PROT_WRITE,
                   MAP_ANONYMOUS | MAP_PRIVATE | MAP_POPULATE, -1, 0);
        if (mem == MAP_FAILED) {
            bench::die_errno("mmap(buffers)");
        }
        m_buffers = static_cast<char*>(mem);
        m_queued = std::make_unique<queued[]>(m_buf_count);
        for (unsigned i = 0; i < m_buf_count; ++i) {
            io_uring_buf_ring_add(m_buf_ring, buffer(static_cast<std::uint16_t>(i)), m_buf_size,
                                  static_cast<unsigned short>(i), m_buf_mask, static_cast<int>(i));
        }
        io_uring_buf_ring_advance(m_buf_ring, static_cast<int>(m_buf_count));
    }

    char* buffer(std::uint16_t bid) { return m_buffers + std::size_t{bid} * m_buf_size; }

    void give_back(std::uint16_t bid) {
        io_uring_buf_ring_add(m_buf_ring, buffer(bid), m_buf_size, bid, m_buf_mask, m_returned);
        ++m_returned;
    }

    void enqueue(connection& c, std::uint16_t bid, std::uint32_t len) {
        m_queued[bid] = {k_no_buf, len};
        if (c.q_tail == k_no_buf) {
            c.q_head = bid;
        } else {
            m_queued[c.q_tail].next = bid;
        }
        c.q_tail = bid;
    }

    std::uint16_t dequeue(connection& c) {
        std::uint16_t bid = c.q_head;
        c.q_head = m_queued[bid].next;
        if (c.q_head == k_no_buf) {
            c.q_tail = k_no_buf;
        }
        return bid;
    }

    io_uring_sqe* get_sqe() {
        io_uring_sqe* sqe = io_uring_get_sqe(&m_ring);
        while (sqe == nullptr) { // SQ full: hand the batch to the kernel and retry
            io_uring_submit(&m_ring);
            sqe = io_uring_get_sqe(&m_ring);
        }
        return sqe;
    }

    void arm_accept() {
        io_uring_sqe* sqe = get_sqe();
        if (m_multishot_accept) {
            io_uring_prep_multishot_accept(sqe, m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        } else {
            io_uring_prep_accept(sqe, m_listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
        }
        io_uring_sqe_set_data64(sqe, pack(op::accept, m_listen_fd));
    }

    void arm_recv(int fd) {
        if (!m_conns[static_cast<std::size_t>(fd)]) {
            return; // parked, then closed after a failed send before buffers came back
        }
        connection& c = conn(fd);
        if (c.closing || c.recv_armed) {
            return maybe_close(fd);
        }
        io_uring_sqe* sqe = get_sqe();
        // Length 0: the kernel takes each buffer's own size from the ring.
        if (m_multishot_recv) {
            io_uring_prep_recv_multishot(sqe, fd, nullptr, 0, 0);
        } else {
            io_uring_prep_recv(sqe, fd, nullptr, 0, 0);
        }
        sqe->flags |= IOSQE_BUFFER_SELECT;
        sqe->buf_group = k_buf_group;
        io_uring_sqe_set_data64(sqe, pack(op::recv, fd));
        c.recv_armed = true;
    }

    void start_send(int fd, connection& c) {
        io_uring_sqe* sqe = get_sqe();
        io_uring_prep_send(sqe, fd, buffer(c.cur_bid) + c.cur_off, c.cur_len - c.cur_off,
                           MSG_NOSIGNAL);
        io_uring_sqe_set_data64(sqe, pack(op::send, fd));
        c.send_inflight = true;
    }

    void handle(std::uint64_t data, int res, unsigned flags) {
        int fd = fd_of(data);
        switch (op_of(data)) {
        case op::accept:
            return on_accept(res, flags);
        case op::recv:
            return on_recv(fd, res, flags);
        case op::send:
            return on_send(fd, res);
        case op::stop:
            m_stop = true;
            return;
        }
    }

    void on_accept(int res, unsigned flags) {
        if (res == -EINVAL && m_multishot_accept) {
            m_multishot_accept = false; // kernel < 5.19: no multishot accept
            return arm_accept();
        }
        if (res >= 0) {
            bench::set_nodelay(res);
            if (static_cast<std::size_t>(res) >= m_conns.size()) {
                m_conns.resize(static_cast<std::size_t>(res) + 1024);
            }
            m_conns[static_cast<std::size_t>(res)] = std::make_unique<connection>();
            arm_recv(res);
        } else if (res != -ECONNABORTED && res != -EINTR) {
            std::fprintf(stderr, "raw_uring_echo: accept: %s\n", std::strerror(-res));
        }
        if (!(flags & IORING_CQE_F_MORE)) {
            arm_accept();
        }
    }

    void on_recv(int fd, int res, unsigned flags) {
        connection& c = conn(fd);
        if (!(flags & IORING_CQE_F_MORE)) {
            c.recv_armed = false; // this SQE is finished; it may still carry data below
        }
        if (res == -EINVAL && m_multishot_recv) {
            m_multishot_recv = false; // kernel < 6.0: no multishot recv
            return arm_recv(fd);
        }
        if (res == -ENOBUFS) {
            // Every buffer is out in a send. Park the connection and re-arm once some come
            // back; re-arming now would fail the same way.
            m_parked.push_back(fd);
            ++m_enobufs;
            return;
        }
        if (res <= 0) {
            c.closing = true; // 0 = EOF: echo what is queued, then close
            return maybe_close(fd);
        }
        auto bid = static_cast<std::uint16_t>(flags >> IORING_CQE_BUFFER_SHIFT);
        if (c.closing) {
            give_back(bid);
        } else if (c.send_inflight) {
            enqueue(c, bid, static_cast<std::uint32_t>(res));
        } else {
            c.cur_bid = bid;
            c.cur_off = 0;
            c.cur_len = static_cast<std::uint32_t>(res);
            start_send(fd, c);
        }
        if (!c.recv_armed) {
            arm_recv(fd);
        }
    }

    void on_send(int fd, int res) {
        connection& c = conn(fd);
        c.send_inflight = false;
        if (res < 0) {
            // EPIPE/ECONNRESET: drop queued data; shutdown() ends a pending recv with EOF.
            give_back(c.cur_bid);
            while (c.q_head != k_no_buf) {
                give_back(dequeue(c));
            }
            c.closing = true;
            shutdown(fd, SHUT_RDWR);
            return maybe_close(fd);
        }
        c.cur_off += static_cast<std::uint32_t>(res);
        if (c.cur_off < c.cur_len) {
            ++m_partial_sends;
            return start_send(fd, c); // partial send: the rest goes before anything newer
        }
        give_back(c.cur_bid);
        if (c.q_head != k_no_buf) {
            c.cur_bid = dequeue(c);
            c.cur_len = m_queued[c.cur_bid].len;
            c.cur_off = 0;
            return start_send(fd, c);
        }
        maybe_close(fd);
    }

    void maybe_close(int fd) {
        connection& c = conn(fd);
        if (c.closing && !c.recv_armed && !c.send_inflight && c.q_head == k_no_buf) {
            close(fd);
            m_conns[static_cast<std::size_t>(fd)].reset();
        }
    }

    connection& conn(int fd) { return *m_conns[static_cast<std::size_t>(fd)]; }

    io_uring m_ring{};
    int m_listen_fd;
    int m_stop_fd;
    bool m_multishot_accept;
    bool m_multishot_recv;
    bool m_stop = false;
    io_uring_buf_ring* m_buf_ring = nullptr;
    int m_buf_mask;
    int m_returned = 0; // buffers added to the ring but not yet published
    unsigned m_buf_size;
    unsigned m_buf_count;
    char* m_buffers = nullptr; // m_buf_count buffers of m_buf_size bytes
    // A buffer waiting in a connection's send queue: its length and the next one queued.
    struct queued {
        std::uint16_t next;
        std::uint32_t len;
    };
    std::unique_ptr<queued[]> m_queued;               // indexed by buffer id
    std::vector<std::unique_ptr<connection>> m_conns; // indexed by fd
    std::vector<int> m_parked;                        // connections waiting for buffers
    std::uint64_t m_enobufs = 0;
    std::uint64_t m_partial_sends = 0;
};

} // namespace

int main(int argc, char** argv) {
    uring_options o;
    unsigned* value = nullptr; // the option whose value comes next
    bench::server_options opts = bench::parse_server_options(argc, argv, [&](std::string_view a) {
        long v = 0;
        if (value != nullptr) {
            if (!bench::parse_long(a, 64, 1 << 20, v)) {
                return false;
            }
            *value = static_cast<unsigned>(v);
            value = nullptr;
        } else if (a == "--plain-setup") {
            o.plain_setup = true;
        } else if (a == "--single-shot") {
            o.single_shot = true;
        } else if (a == "--buf-size") {
            value = &o.buf_size;
        } else if (a == "--buf-count") {
            value = &o.buf_count;
        } else {
            return false;
        }
        return true;
    });
    if (value != nullptr || (o.buf_count & (o.buf_count - 1)) != 0 || o.buf_count >= k_no_buf) {
        bench::die_usage(argv[0], "--buf-size/--buf-count need a value; the count a power of two");
    }
    bench::pin_to_cpu(opts.cpu);
    bench::raise_nofile_limit();
    int stop_fd = bench::make_stop_fd();
    int listen_fd = bench::open_listener(opts.port, false);
    {
        server srv(listen_fd, stop_fd, o);
        srv.run();
    }
    close(listen_fd);
    close(stop_fd);
    return 0;
}
