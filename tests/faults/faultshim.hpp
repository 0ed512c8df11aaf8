// tests/faults/faultshim.hpp - what the fault shim's two halves share:
// faultshim.cpp decides (settings, counters, per-fd state, owed edges) and
// faultshim_calls.cpp holds the interposed calls. Private to the shim.
#pragma once

#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>

namespace faultshim {

// The libc functions the shim stands in front of (dlsym(RTLD_NEXT)).
#define FAULTSHIM_REAL(name) extern decltype(&::name) real_##name
FAULTSHIM_REAL(recv);
FAULTSHIM_REAL(recvfrom);
FAULTSHIM_REAL(recvmsg);
FAULTSHIM_REAL(read);
FAULTSHIM_REAL(readv);
FAULTSHIM_REAL(send);
FAULTSHIM_REAL(sendto);
FAULTSHIM_REAL(sendmsg);
FAULTSHIM_REAL(write);
FAULTSHIM_REAL(writev);
FAULTSHIM_REAL(accept);
FAULTSHIM_REAL(accept4);
FAULTSHIM_REAL(connect);
FAULTSHIM_REAL(close);
FAULTSHIM_REAL(epoll_ctl);
FAULTSHIM_REAL(epoll_wait);
FAULTSHIM_REAL(epoll_pwait);
#undef FAULTSHIM_REAL
using pwait2_fn = int (*)(int, epoll_event*, int, const timespec*, const sigset_t*);
extern pwait2_fn real_epoll_pwait2;

// Reads the settings once; false while that runs on this thread (its own
// calls are not faulted). Resolves the real functions first.
bool ensure_init();
// Resolves real_close / real_epoll_ctl alone (they run before init too).
void resolve_early();

enum class side : std::uint8_t { read, write, accept };

// What to do with one call: go on with `len` bytes (maybe fewer: a short
// transfer), or fail with `err`.
struct verdict {
    bool fail = false;
    int err = 0;
    std::size_t len = 0;
};
verdict decide(int fd, std::size_t len, side s);

// A connect that returned EINPROGRESS: true if it is to say EINTR instead.
bool interrupt_connect(int fd);

// The fd is closed (or a new one, from accept): forget what was known of it.
void forget_fd(int fd);
// epoll_ctl succeeded: remember (or forget) the fd's registration.
void note_epoll_ctl(int epfd, int op, int fd, const epoll_event* ev);
// An fd registered on epfd is owed an edge.
bool owed_pending(int epfd);
// Adds the owed edges to the n events an epoll wait returned (up to max).
int add_owed(int epfd, epoll_event* ev, int n, int max);
// EINTR for an epoll wait, if that kind is on and the dice say so.
bool wait_fault();

// The counters and their names (the exported faultshim_counters()).
const std::uint64_t* counters();
const char* counter_names_line();

} // namespace faultshim
