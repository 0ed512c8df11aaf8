// tests/faults/faultshim_calls.cpp - the calls the fault shim interposes
// (faultshim.cpp says what each one gets; the header comment there has the
// whole story).
#include "faultshim.hpp"

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdint>

using namespace faultshim;

namespace {

// A copy of an iovec array cut to `len` bytes in total.
struct short_iov {
    iovec iov[64];
    int n = 0;
    short_iov(const iovec* in, int count, std::size_t len) {
        for (int i = 0; i < count && i < 64 && len > 0; ++i) {
            iov[n] = in[i];
            if (iov[n].iov_len > len) {
                iov[n].iov_len = len;
            }
            len -= iov[n].iov_len;
            ++n;
        }
    }
};

std::size_t iov_total(const iovec* iov, int n) {
    std::size_t t = 0;
    for (int i = 0; i < n; ++i) {
        t += iov[i].iov_len;
    }
    return t;
}

} // namespace

extern "C" {

// For tests that look at what was injected (dlsym(RTLD_DEFAULT, ...)).
const std::uint64_t* faultshim_counters(void) {
    return counters();
}
const char* faultshim_counter_names(void) {
    return counter_names_line();
}

ssize_t recv(int fd, void* buf, size_t n, int flags) {
    const verdict v = decide(fd, n, side::read);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_recv(fd, buf, v.len, flags);
}

ssize_t recvfrom(int fd, void* buf, size_t n, int flags, sockaddr* a, socklen_t* l) {
    const verdict v = decide(fd, n, side::read);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_recvfrom(fd, buf, v.len, flags, a, l);
}

ssize_t read(int fd, void* buf, size_t n) {
    const verdict v = decide(fd, n, side::read);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_read(fd, buf, v.len);
}

ssize_t readv(int fd, const iovec* iov, int count) {
    const std::size_t total = iov_total(iov, count);
    const verdict v = decide(fd, total, side::read);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    if (v.len == total) {
        return real_readv(fd, iov, count);
    }
    short_iov s(iov, count, v.len);
    return real_readv(fd, s.iov, s.n);
}

ssize_t recvmsg(int fd, msghdr* msg, int flags) {
    const std::size_t total = iov_total(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    const verdict v = decide(fd, total, side::read);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    if (v.len == total) {
        return real_recvmsg(fd, msg, flags);
    }
    short_iov s(msg->msg_iov, static_cast<int>(msg->msg_iovlen), v.len);
    iovec* saved = msg->msg_iov;
    const std::size_t saved_n = msg->msg_iovlen;
    msg->msg_iov = s.iov;
    msg->msg_iovlen = static_cast<std::size_t>(s.n);
    const ssize_t r = real_recvmsg(fd, msg, flags);
    msg->msg_iov = saved;
    msg->msg_iovlen = saved_n;
    return r;
}

ssize_t send(int fd, const void* buf, size_t n, int flags) {
    const verdict v = decide(fd, n, side::write);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_send(fd, buf, v.len, flags);
}

ssize_t sendto(int fd, const void* buf, size_t n, int flags, const sockaddr* a, socklen_t l) {
    const verdict v = decide(fd, n, side::write);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_sendto(fd, buf, v.len, flags, a, l);
}

ssize_t write(int fd, const void* buf, size_t n) {
    const verdict v = decide(fd, n, side::write);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    return real_write(fd, buf, v.len);
}

ssize_t writev(int fd, const iovec* iov, int count) {
    const std::size_t total = iov_total(iov, count);
    const verdict v = decide(fd, total, side::write);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    if (v.len == total) {
        return real_writev(fd, iov, count);
    }
    short_iov s(iov, count, v.len);
    return real_writev(fd, s.iov, s.n);
}

ssize_t sendmsg(int fd, const msghdr* msg, int flags) {
    const std::size_t total = iov_total(msg->msg_iov, static_cast<int>(msg->msg_iovlen));
    const verdict v = decide(fd, total, side::write);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    if (v.len == total) {
        return real_sendmsg(fd, msg, flags);
    }
    short_iov s(msg->msg_iov, static_cast<int>(msg->msg_iovlen), v.len);
    msghdr copy = *msg;
    copy.msg_iov = s.iov;
    copy.msg_iovlen = static_cast<std::size_t>(s.n);
    return real_sendmsg(fd, &copy, flags);
}

int accept4(int fd, sockaddr* a, socklen_t* l, int flags) {
    const verdict v = decide(fd, 1, side::accept);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    const int r = real_accept4(fd, a, l, flags);
    if (r >= 0) {
        forget_fd(r);
    }
    return r;
}

int accept(int fd, sockaddr* a, socklen_t* l) {
    const verdict v = decide(fd, 1, side::accept);
    if (v.fail) {
        errno = v.err;
        return -1;
    }
    const int r = real_accept(fd, a, l);
    if (r >= 0) {
        forget_fd(r);
    }
    return r;
}

int connect(int fd, const sockaddr* a, socklen_t l) {
    const bool ready = ensure_init();
    const int r = real_connect(fd, a, l);
    if (ready && r != 0 && errno == EINPROGRESS && interrupt_connect(fd)) {
        // POSIX: interrupted, and the connection is established in the
        // background.
        errno = EINTR;
    }
    return r;
}

int close(int fd) {
    resolve_early();
    forget_fd(fd);
    return real_close(fd);
}

int epoll_ctl(int epfd, int op, int fd, epoll_event* ev) {
    resolve_early();
    const int r = real_epoll_ctl(epfd, op, fd, ev);
    if (r == 0) {
        note_epoll_ctl(epfd, op, fd, ev);
    }
    return r;
}

int epoll_wait(int epfd, epoll_event* ev, int max, int timeout) {
    if (wait_fault()) {
        return -1;
    }
    const bool owed = owed_pending(epfd);
    const int n = real_epoll_wait(epfd, ev, max, owed ? 0 : timeout);
    return n < 0 || !owed ? n : add_owed(epfd, ev, n, max);
}

int epoll_pwait(int epfd, epoll_event* ev, int max, int timeout, const sigset_t* mask) {
    if (wait_fault()) {
        return -1;
    }
    const bool owed = owed_pending(epfd);
    const int n = real_epoll_pwait(epfd, ev, max, owed ? 0 : timeout, mask);
    return n < 0 || !owed ? n : add_owed(epfd, ev, n, max);
}

int epoll_pwait2(int epfd, epoll_event* ev, int max, const timespec* timeout,
                 const sigset_t* mask) {
    if (wait_fault()) {
        return -1;
    }
    const bool owed = owed_pending(epfd);
    static const timespec zero{};
    const timespec* t = owed ? &zero : timeout;
    // (glibc before 2.35 has no wrapper; the kernel's sigset is 8 bytes)
    const int n = real_epoll_pwait2 != nullptr
                      ? real_epoll_pwait2(epfd, ev, max, t, mask)
                      : static_cast<int>(::syscall(SYS_epoll_pwait2, epfd, ev, max, t, mask, 8));
    return n < 0 || !owed ? n : add_owed(epfd, ev, n, max);
}

} // extern "C"
