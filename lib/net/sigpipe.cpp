// lib/net/sigpipe.cpp - the SIGPIPE policy for pipe writers (sigpipe.hpp).
#include "net/sigpipe.hpp"

#include <pthread.h>
#include <signal.h>

#include <ctime>

namespace coio::detail {

namespace {

thread_local unsigned t_writers = 0;
thread_local bool t_blocked_here = false; // SIGPIPE was unblocked before the first writer

sigset_t sigpipe_set() noexcept {
    sigset_t s;
    sigemptyset(&s);
    sigaddset(&s, SIGPIPE);
    return s;
}

// Takes a SIGPIPE pending on this thread (or the process), if any.
void discard_pending() noexcept {
    sigset_t pending;
    sigemptyset(&pending);
    if (::sigpending(&pending) != 0 || sigismember(&pending, SIGPIPE) != 1) {
        return;
    }
    const sigset_t s = sigpipe_set();
#if defined(__APPLE__)
    int sig = 0;
    (void)::sigwait(&s, &sig); // pending, so it returns at once
#else
    const timespec zero{0, 0};
    (void)::sigtimedwait(&s, nullptr, &zero);
#endif
}

} // namespace

void hold_sigpipe() noexcept {
    if (t_writers++ > 0) {
        return;
    }
    const sigset_t s = sigpipe_set();
    sigset_t old;
    sigemptyset(&old);
    if (::pthread_sigmask(SIG_BLOCK, &s, &old) == 0) {
        t_blocked_here = sigismember(&old, SIGPIPE) != 1;
    }
}

void release_sigpipe() noexcept {
    if (t_writers == 0 || --t_writers > 0) {
        return;
    }
    if (!t_blocked_here) {
        return; // the application blocks SIGPIPE itself: leave it as it was
    }
    discard_pending();
    const sigset_t s = sigpipe_set();
    (void)::pthread_sigmask(SIG_UNBLOCK, &s, nullptr);
    t_blocked_here = false;
}

} // namespace coio::detail
