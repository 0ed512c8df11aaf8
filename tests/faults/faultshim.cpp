// tests/faults/faultshim.cpp - an LD_PRELOAD fault injector for the socket
// calls coio's readiness backend makes (RELIABILITY 31; docs/reliability.md).
//
// Environment:
//   FAULT_SEED        the seed of the fault sequence (printed by the drivers)
//   FAULT_PCT         chance in percent (fractions allowed: 0.5) that an
//                     eligible call is faulted
//   FAULT_KINDS       comma-separated kinds to inject (default: eagain,short,abort)
//   FAULT_REPORT_DIR  if set, the counters live in DIR/shim.<pid>, a file
//                     mapped shared, so they survive a SIGKILL: a header
//                     line naming the counters, then one uint64 per counter
//                     from byte 256
//   FAULT_VERBOSE=1   print the counters to stderr at exit
//
// Eligible calls: recv, recvfrom, recvmsg, read, readv, send, sendto, sendmsg,
// write, writev, accept, accept4 and connect on NON-BLOCKING TCP and UDP
// sockets (coio's sockets all are non-blocking; a test's own blocking sockets,
// Unix-domain sockets - coio's signal self-pipe among them: its handler's
// send must not be faulted, an EAGAIN there drops the signal - and every
// other fd are left alone), and epoll_wait / epoll_pwait / epoll_pwait2.
//
// Kinds (a faulted call picks one of the kinds enabled that apply to it):
//   eintr       EINTR from a socket call. For connect it has the POSIX meaning:
//               the real connect ran and goes on in the background.
//   eagain      EAGAIN without doing the call.
//   short       a read or write of a stream socket done for real with a
//               shorter length (never a lie about what moved).
//   reset       ECONNRESET; the socket then keeps failing (as a reset one does)
//   epipe       EPIPE from a write; the socket keeps failing
//   nomem       ENOMEM from a read (transient)
//   nobufs      ENOBUFS from a write (transient)
//   abort       ECONNABORTED from accept (the pending connection stays queued)
//   accept_nomem  ENOBUFS, ENOMEM or EMFILE from accept (transient)
//   wait_eintr  EINTR from epoll_wait / epoll_pwait / epoll_pwait2
//
// Owed edges: coio's epoll backend is edge-triggered, and a real EAGAIN or a
// real short transfer means the socket WAS drained (or full), so the next
// data raises an edge. A faked EAGAIN or short transfer leaves data behind
// with no edge to come - a state a real kernel cannot produce. So after each
// one the shim owes the fd an edge: the next epoll wait reports the fd ready
// in that direction (with the data it was registered with), as if the rest
// had arrived just after the call. The counter `edges` says how many.
#include "faultshim.hpp"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace faultshim {

decltype(&::recv) real_recv = nullptr;
decltype(&::recvfrom) real_recvfrom = nullptr;
decltype(&::recvmsg) real_recvmsg = nullptr;
decltype(&::read) real_read = nullptr;
decltype(&::readv) real_readv = nullptr;
decltype(&::send) real_send = nullptr;
decltype(&::sendto) real_sendto = nullptr;
decltype(&::sendmsg) real_sendmsg = nullptr;
decltype(&::write) real_write = nullptr;
decltype(&::writev) real_writev = nullptr;
decltype(&::accept) real_accept = nullptr;
decltype(&::accept4) real_accept4 = nullptr;
decltype(&::connect) real_connect = nullptr;
decltype(&::close) real_close = nullptr;
decltype(&::epoll_ctl) real_epoll_ctl = nullptr;
decltype(&::epoll_wait) real_epoll_wait = nullptr;
decltype(&::epoll_pwait) real_epoll_pwait = nullptr;
pwait2_fn real_epoll_pwait2 = nullptr;

namespace {

enum counter : int {
    c_calls, // eligible socket calls seen
    c_eintr,
    c_eagain,
    c_short_read,
    c_short_write,
    c_reset,
    c_epipe,
    c_nomem,
    c_nobufs,
    c_abort,
    c_accept_nomem,
    c_wait_eintr,
    c_edges, // owed edges delivered
    c_count
};
constexpr const char* counter_names =
    "faultshim calls eintr eagain short_read short_write reset epipe nomem nobufs abort "
    "accept_nomem wait_eintr edges";
constexpr std::size_t header_bytes = 256;

enum kind_bit : unsigned {
    k_eintr = 1U << 0,
    k_eagain = 1U << 1,
    k_short = 1U << 2,
    k_reset = 1U << 3,
    k_epipe = 1U << 4,
    k_nomem = 1U << 5,
    k_abort = 1U << 6,
    k_accept_nomem = 1U << 7,
    k_wait_eintr = 1U << 8,
    k_nobufs = 1U << 9,
};

struct kind_name {
    const char* name;
    unsigned bit;
};
constexpr kind_name kind_names[] = {
    {"eintr", k_eintr},           {"eagain", k_eagain}, {"short", k_short},
    {"reset", k_reset},           {"epipe", k_epipe},   {"nomem", k_nomem},
    {"nobufs", k_nobufs},         {"abort", k_abort},   {"accept_nomem", k_accept_nomem},
    {"wait_eintr", k_wait_eintr},
};

// Per-fd state, for fds below max_fds.
constexpr int max_fds = 65536;
enum : std::int8_t { t_unknown = 0, t_stream = 1, t_other_socket = 2, t_not_inet = 3 };
constexpr std::uint8_t owe_in = 1;
constexpr std::uint8_t owe_out = 2;
struct fd_state {
    std::uint64_t ino = 0;     // the socket the cached type is for
    std::uint64_t reg_ino = 0; // the socket registered with epoll (epfd, events, data)
    std::uint64_t data = 0;    // epoll_event.data it was registered with
    std::uint32_t events = 0;  // and the events
    int epfd = -1;             // -1: not registered (as far as the shim saw)
    std::int8_t type = t_unknown;
    std::uint8_t owed = 0;
    std::int16_t broken = 0; // errno the socket keeps failing with (reset, epipe)
};
fd_state g_fd[max_fds];

// Fds owed an edge, in a small FIFO (each fd once: its `owed` bits say).
constexpr int max_owed = 4096;
int g_owed[max_owed];
int g_owed_n = 0;
pthread_mutex_t g_lock = PTHREAD_MUTEX_INITIALIZER;

std::uint64_t g_local_counts[c_count];
std::uint64_t* g_counts = g_local_counts;
std::atomic<std::uint64_t> g_rng{0};
unsigned g_kinds = 0;
int g_permille = 0; // chance per eligible call, in 1/1000 (FAULT_PCT * 10)
bool g_verbose = false;
pthread_once_t g_once = PTHREAD_ONCE_INIT;
std::atomic<bool> g_ready{false};
thread_local bool t_in_init = false; // calls made by init() itself pass through

template <class F>
void resolve(F& fn, const char* name) {
    if (fn == nullptr) {
        fn = reinterpret_cast<F>(::dlsym(RTLD_NEXT, name));
    }
}

void count(counter c, std::uint64_t n = 1) {
    __atomic_fetch_add(&g_counts[c], n, __ATOMIC_RELAXED);
}

void map_report() {
    const char* dir = std::getenv("FAULT_REPORT_DIR");
    if (dir == nullptr || *dir == '\0') {
        return;
    }
    char path[4096];
    std::snprintf(path, sizeof path, "%s/shim.%d", dir, static_cast<int>(::getpid()));
    const int fd = ::open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        std::fprintf(stderr, "faultshim: cannot create %s: %s\n", path, std::strerror(errno));
        return;
    }
    const std::size_t size = header_bytes + sizeof(std::uint64_t) * c_count;
    void* p = MAP_FAILED;
    if (::ftruncate(fd, static_cast<off_t>(size)) == 0) {
        p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    }
    if (p == MAP_FAILED) {
        std::fprintf(stderr, "faultshim: cannot map %s: %s\n", path, std::strerror(errno));
    } else {
        auto* bytes = static_cast<char*>(p);
        std::snprintf(bytes, header_bytes, "%s\n", counter_names);
        g_counts = reinterpret_cast<std::uint64_t*>(bytes + header_bytes);
    }
    resolve(real_close, "close");
    real_close(fd); // the mapping stays
}

void init() {
    t_in_init = true;
    resolve(real_recv, "recv");
    resolve(real_recvfrom, "recvfrom");
    resolve(real_recvmsg, "recvmsg");
    resolve(real_read, "read");
    resolve(real_readv, "readv");
    resolve(real_send, "send");
    resolve(real_sendto, "sendto");
    resolve(real_sendmsg, "sendmsg");
    resolve(real_write, "write");
    resolve(real_writev, "writev");
    resolve(real_accept, "accept");
    resolve(real_accept4, "accept4");
    resolve(real_connect, "connect");
    resolve(real_close, "close");
    resolve(real_epoll_ctl, "epoll_ctl");
    resolve(real_epoll_wait, "epoll_wait");
    resolve(real_epoll_pwait, "epoll_pwait");
    resolve(real_epoll_pwait2, "epoll_pwait2");

    const char* seed = std::getenv("FAULT_SEED");
    std::uint64_t s = seed != nullptr ? std::strtoull(seed, nullptr, 10) : 1;
    g_rng.store((s * 0x9E3779B97F4A7C15ULL) | 1, std::memory_order_relaxed);
    const char* pct = std::getenv("FAULT_PCT");
    g_permille = pct != nullptr ? static_cast<int>(std::strtod(pct, nullptr) * 10.0 + 0.5) : 0;
    const char* kinds = std::getenv("FAULT_KINDS");
    if (kinds == nullptr) {
        kinds = "eagain,short,abort";
    }
    for (const kind_name& k : kind_names) {
        const std::size_t n = std::strlen(k.name);
        for (const char* p = kinds; (p = std::strstr(p, k.name)) != nullptr; p += n) {
            const bool starts = p == kinds || p[-1] == ',';
            const bool ends = p[n] == ',' || p[n] == '\0';
            if (starts && ends) {
                g_kinds |= k.bit;
            }
        }
    }
    const char* verbose = std::getenv("FAULT_VERBOSE");
    g_verbose = verbose != nullptr && *verbose == '1';
    map_report();
    t_in_init = false;
    g_ready.store(true, std::memory_order_release);
}

__attribute__((constructor)) void init_early() {
    ensure_init();
}

std::uint32_t rnd() {
    std::uint64_t x = g_rng.load(std::memory_order_relaxed);
    std::uint64_t next = 0;
    do {
        next = x;
        next ^= next << 13;
        next ^= next >> 7;
        next ^= next << 17;
    } while (!g_rng.compare_exchange_weak(x, next, std::memory_order_relaxed));
    return static_cast<std::uint32_t>(next >> 16);
}

fd_state* state_of(int fd) {
    return fd >= 0 && fd < max_fds ? &g_fd[fd] : nullptr;
}

// The fd is a non-blocking socket. Its type is cached with its inode: libc
// closes some fds without calling close() (fclose), so a number can change
// hands unseen.
bool eligible(int fd, fd_state*& st) {
    st = state_of(fd);
    struct stat sb {};
    if (st == nullptr || ::fstat(fd, &sb) != 0 || !S_ISSOCK(sb.st_mode)) {
        return false;
    }
    if (st->type == t_unknown || st->ino != sb.st_ino) {
        int type = 0;
        socklen_t len = sizeof type;
        const bool stream =
            ::getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &len) == 0 && type == SOCK_STREAM;
        sockaddr_storage sa{};
        socklen_t sa_len = sizeof sa;
        const bool inet = ::getsockname(fd, reinterpret_cast<sockaddr*>(&sa), &sa_len) == 0 &&
                          (sa.ss_family == AF_INET || sa.ss_family == AF_INET6);
        pthread_mutex_lock(&g_lock);
        st->ino = sb.st_ino;
        st->type = !inet ? t_not_inet : stream ? t_stream : t_other_socket;
        st->broken = 0;
        pthread_mutex_unlock(&g_lock);
    }
    if (st->type == t_not_inet) {
        return false;
    }
    const int fl = ::fcntl(fd, F_GETFL);
    return fl >= 0 && (fl & O_NONBLOCK) != 0;
}

void owe(int fd, std::uint8_t bits) {
    fd_state* st = state_of(fd);
    if (st == nullptr) {
        return;
    }
    pthread_mutex_lock(&g_lock);
    if (st->owed == 0 && g_owed_n < max_owed) {
        g_owed[g_owed_n++] = fd;
        st->owed = bits;
    } else if (st->owed != 0) {
        st->owed |= bits;
    }
    pthread_mutex_unlock(&g_lock);
}

// The socket the fd is now is the one registered on epfd.
bool registered_on(const fd_state& st, int epfd) {
    return st.epfd == epfd && st.reg_ino == st.ino;
}

__attribute__((destructor)) void report() {
    if (!g_verbose) {
        return;
    }
    std::fprintf(stderr, "faultshim[%d]:", static_cast<int>(::getpid()));
    const char* names = counter_names + std::strlen("faultshim ");
    for (int i = 0; i < c_count; ++i) {
        const char* end = std::strchr(names, ' ');
        const int n =
            end != nullptr ? static_cast<int>(end - names) : static_cast<int>(std::strlen(names));
        std::fprintf(stderr, " %.*s=%llu", n, names, static_cast<unsigned long long>(g_counts[i]));
        names = end != nullptr ? end + 1 : names + n;
    }
    std::fprintf(stderr, "\n");
}

} // namespace

// False while init() runs on this thread (its own calls are not faulted).
bool ensure_init() {
    if (g_ready.load(std::memory_order_acquire)) {
        return true;
    }
    if (t_in_init) {
        return false;
    }
    pthread_once(&g_once, init);
    return true;
}

verdict decide(int fd, std::size_t len, side s) {
    verdict v{false, 0, len};
    fd_state* st = nullptr;
    if (!ensure_init() || g_permille <= 0 || !eligible(fd, st)) {
        return v;
    }
    if (st->broken != 0 && s != side::accept) {
        v.fail = true; // a reset socket keeps failing
        v.err = st->broken;
        return v;
    }
    count(c_calls);
    if (static_cast<int>(rnd() % 1000) >= g_permille) {
        return v;
    }
    // The kinds that apply to this call.
    unsigned apply = k_eintr | k_eagain;
    if (s == side::accept) {
        apply |= k_abort | k_accept_nomem;
    } else {
        apply |= k_reset;
        apply |= s == side::write ? k_epipe | k_nobufs : k_nomem;
        if (st->type == t_stream && len > 1) {
            apply |= k_short;
        }
    }
    apply &= g_kinds;
    if (apply == 0) {
        return v;
    }
    int pick = static_cast<int>(rnd() % static_cast<unsigned>(__builtin_popcount(apply)));
    unsigned bit = 1;
    for (;; bit <<= 1) {
        if ((apply & bit) != 0 && pick-- == 0) {
            break;
        }
    }
    const std::uint8_t edge = s == side::write ? owe_out : owe_in;
    v.fail = true;
    switch (bit) {
    case k_eintr:
        v.err = EINTR;
        count(c_eintr);
        owe(fd, edge); // harmless if the caller retries at once
        break;
    case k_eagain:
        v.err = EAGAIN;
        count(c_eagain);
        owe(fd, edge);
        break;
    case k_short:
        v.fail = false;
        v.len = 1 + rnd() % (len - 1);
        count(s == side::read ? c_short_read : c_short_write);
        owe(fd, edge);
        break;
    case k_reset:
        v.err = st->broken = ECONNRESET;
        count(c_reset);
        owe(fd, owe_in | owe_out); // a real reset raises an edge both ways
        break;
    case k_epipe:
        v.err = st->broken = EPIPE;
        count(c_epipe);
        owe(fd, owe_in | owe_out);
        break;
    case k_nomem:
    case k_nobufs:
        // Transient, and nothing in the kernel raises an edge when memory
        // comes back: none is owed.
        v.err = bit == k_nomem ? ENOMEM : ENOBUFS;
        count(bit == k_nomem ? c_nomem : c_nobufs);
        break;
    case k_abort:
        v.err = ECONNABORTED;
        count(c_abort);
        owe(fd, edge);
        break;
    case k_accept_nomem: {
        static constexpr int errs[] = {ENOBUFS, ENOMEM, EMFILE};
        v.err = errs[rnd() % 3];
        count(c_accept_nomem);
        owe(fd, edge);
        break;
    }
    default:
        v.fail = false;
        break;
    }
    return v;
}

// Delivers owed edges after a real epoll wait returned n events: each owed fd
// registered on `epfd` is reported ready (merged into an event the wait
// returned for it, or appended), as far as `max` allows.
int add_owed(int epfd, epoll_event* ev, int n, int max) {
    pthread_mutex_lock(&g_lock);
    int kept = 0;
    for (int i = 0; i < g_owed_n; ++i) {
        const int fd = g_owed[i];
        fd_state& st = g_fd[fd];
        if (st.owed == 0) {
            continue;
        }
        if (!registered_on(st, epfd)) {
            g_owed[kept++] = fd; // not registered here (yet): later
            continue;
        }
        std::uint32_t bits = 0;
        if ((st.owed & owe_in) != 0) {
            bits |= EPOLLIN;
        }
        if ((st.owed & owe_out) != 0) {
            bits |= EPOLLOUT;
        }
        bits &= st.events;
        int j = 0;
        while (j < n && ev[j].data.u64 != st.data) {
            ++j;
        }
        if (j < n) {
            ev[j].events |= bits;
        } else if (n < max) {
            ev[n].events = bits;
            ev[n].data.u64 = st.data;
            ++n;
        } else {
            g_owed[kept++] = fd; // no room: next wait
            continue;
        }
        st.owed = 0;
        count(c_edges);
    }
    g_owed_n = kept;
    pthread_mutex_unlock(&g_lock);
    return n;
}

// An fd registered on epfd is owed an edge (an fd not registered anywhere
// waits until it is: EPOLL_CTL_ADD reports what it finds anyway).
bool owed_pending(int epfd) {
    pthread_mutex_lock(&g_lock);
    bool any = false;
    for (int i = 0; i < g_owed_n && !any; ++i) {
        const fd_state& st = g_fd[g_owed[i]];
        any = st.owed != 0 && registered_on(st, epfd);
    }
    pthread_mutex_unlock(&g_lock);
    return any;
}

// EINTR from an epoll wait, if that kind is on and the dice say so.
bool wait_fault() {
    if (!ensure_init() || (g_kinds & k_wait_eintr) == 0 || g_permille <= 0) {
        return false;
    }
    if (static_cast<int>(rnd() % 1000) >= g_permille) {
        return false;
    }
    count(c_wait_eintr);
    errno = EINTR;
    return true;
}

void forget_fd(int fd) {
    if (fd_state* st = state_of(fd)) {
        pthread_mutex_lock(&g_lock);
        *st = fd_state{};
        pthread_mutex_unlock(&g_lock);
    }
}

void resolve_early() {
    resolve(real_close, "close");
    resolve(real_epoll_ctl, "epoll_ctl");
}

bool interrupt_connect(int fd) {
    fd_state* st = nullptr;
    if ((g_kinds & k_eintr) == 0 || g_permille <= 0 || !eligible(fd, st)) {
        return false;
    }
    count(c_calls);
    if (static_cast<int>(rnd() % 1000) >= g_permille) {
        return false;
    }
    count(c_eintr);
    owe(fd, owe_out);
    return true;
}

void note_epoll_ctl(int epfd, int op, int fd, const epoll_event* ev) {
    struct stat sb {};
    fd_state* st = state_of(fd);
    if (st == nullptr || ::fstat(fd, &sb) != 0) {
        return;
    }
    pthread_mutex_lock(&g_lock);
    if (op == EPOLL_CTL_DEL) {
        st->epfd = -1;
    } else if (ev != nullptr) {
        st->epfd = epfd;
        st->reg_ino = sb.st_ino;
        st->events = ev->events;
        st->data = ev->data.u64;
    }
    pthread_mutex_unlock(&g_lock);
}

const std::uint64_t* counters() {
    ensure_init();
    return g_counts;
}

const char* counter_names_line() {
    return counter_names;
}

} // namespace faultshim
