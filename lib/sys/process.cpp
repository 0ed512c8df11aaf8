// lib/sys/process.cpp - posix_spawn, the exit watch (pidfd or kqueue), reap,
// kill (sys/process.hpp).
#include "sys/process.hpp"

#include "sys/fd.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#if defined(__linux__)
#include <sys/syscall.h>
#else
#include <sys/event.h>
#include <sys/time.h>
#endif
#if defined(__APPLE__)
#include <crt_externs.h>
#endif

#include <cerrno>
#include <cstring>

#if !defined(__APPLE__)
extern char** environ; // NOLINT: POSIX declares it nowhere
#endif

namespace coio::sys {

namespace {

char** our_environment() noexcept {
#if defined(__APPLE__)
    return *_NSGetEnviron();
#else
    return environ;
#endif
}

// posix_spawn's attributes and file actions, destroyed on every path.
class spawn_setup {
public:
    spawn_setup() noexcept {
        m_attr_ok = ::posix_spawnattr_init(&m_attr) == 0;
        m_actions_ok = ::posix_spawn_file_actions_init(&m_actions) == 0;
    }
    spawn_setup(const spawn_setup&) = delete;
    spawn_setup& operator=(const spawn_setup&) = delete;
    ~spawn_setup() {
        if (m_attr_ok) {
            ::posix_spawnattr_destroy(&m_attr);
        }
        if (m_actions_ok) {
            ::posix_spawn_file_actions_destroy(&m_actions);
        }
        for (int fd : m_temp) {
            if (fd >= 0) {
                ::close(fd);
            }
        }
    }
    [[nodiscard]] bool ok() const noexcept { return m_attr_ok && m_actions_ok; }

    // The signal mask and, if asked, a new session. 0 or an errno.
    int attributes(bool new_session) noexcept {
        sigset_t none;
        sigemptyset(&none);
        short flags = POSIX_SPAWN_SETSIGMASK;
        if (new_session) {
#if defined(POSIX_SPAWN_SETSID)
            flags = static_cast<short>(flags | POSIX_SPAWN_SETSID);
#else
            return ENOTSUP;
#endif
        }
        if (const int e = ::posix_spawnattr_setsigmask(&m_attr, &none); e != 0) {
            return e;
        }
        return ::posix_spawnattr_setflags(&m_attr, flags);
    }

    // fd 0, 1 or 2 of the child. Our fds below 3 are first duplicated above
    // 2, so no dup2 onto 0-2 can overwrite one still to be duplicated, and
    // dup2 always clears the copy's FD_CLOEXEC (dup2(fd, fd) would not).
    int redirect(int target, int how) noexcept {
        if (how == spawn_inherit) {
            return 0;
        }
        if (how == spawn_devnull) {
            return ::posix_spawn_file_actions_addopen(&m_actions, target, "/dev/null",
                                                      target == 0 ? O_RDONLY : O_WRONLY, 0);
        }
        if (how == spawn_to_stdout) {
            return ::posix_spawn_file_actions_adddup2(&m_actions, 1, target);
        }
        int fd = how;
        if (fd < 3) {
            fd = dup_cloexec(how, 3);
            if (fd < 0) {
                return -fd;
            }
            m_temp[target] = fd;
        }
        return ::posix_spawn_file_actions_adddup2(&m_actions, fd, target);
    }

    int chdir(const char* dir) noexcept {
#if defined(__GLIBC__) || defined(__APPLE__) || defined(__FreeBSD__)
        return ::posix_spawn_file_actions_addchdir_np(&m_actions, dir);
#else
        (void)dir;
        return ENOTSUP;
#endif
    }

    long run(const spawn_request& r) noexcept {
        pid_t pid = 0;
        char* const* envp = r.envp != nullptr ? r.envp : our_environment();
        const int e = ::posix_spawnp(&pid, r.program, &m_actions, &m_attr, r.argv, envp);
        return e == 0 ? static_cast<long>(pid) : -static_cast<long>(e);
    }

private:
    posix_spawnattr_t m_attr{};
    posix_spawn_file_actions_t m_actions{};
    int m_temp[3] = {-1, -1, -1};
    bool m_attr_ok = false;
    bool m_actions_ok = false;
};

} // namespace

long spawn(const spawn_request& r) noexcept {
    spawn_setup s;
    if (!s.ok()) {
        return -ENOMEM;
    }
    if (const int e = s.attributes(r.new_session); e != 0) {
        return -e;
    }
    for (int target = 0; target < 3; ++target) {
        if (const int e = s.redirect(target, r.stdio[target]); e != 0) {
            return -e;
        }
    }
    if (r.cwd != nullptr) {
        if (const int e = s.chdir(r.cwd); e != 0) {
            return -e;
        }
    }
    return s.run(r);
}

namespace {
// waitpid(WNOHANG): 1 and *out filled, 0 if it still runs, or -errno.
int reap_by_pid(long pid, child_status* out) noexcept {
    int status = 0;
    const pid_t r = ::waitpid(static_cast<pid_t>(pid), &status, WNOHANG);
    if (r < 0) {
        return -errno;
    }
    if (r == 0) {
        return 0;
    }
    if (WIFEXITED(status)) {
        out->exited = true;
        out->value = WEXITSTATUS(status);
    } else {
        out->exited = false;
        out->value = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return 1;
}
} // namespace

#if defined(__linux__)

int open_exit_watch(long pid) noexcept {
#if defined(SYS_pidfd_open)
    const long fd = ::syscall(SYS_pidfd_open, static_cast<pid_t>(pid), 0U);
    return fd >= 0 ? static_cast<int>(fd) : -errno; // pidfds are always close-on-exec
#else
    (void)pid;
    return -ENOSYS;
#endif
}

int try_reap(long pid, int watch, child_status* out) noexcept {
    if (watch >= 0) {
        // P_PIDFD (Linux 5.4) is in glibc's idtype_t from 2.36 on.
        constexpr auto p_pidfd = static_cast<idtype_t>(3);
        siginfo_t si;
        std::memset(&si, 0, sizeof si);
        if (::waitid(p_pidfd, static_cast<id_t>(watch), &si, WEXITED | WNOHANG) == 0) {
            if (si.si_pid == 0) {
                return 0; // still running
            }
            out->exited = si.si_code == CLD_EXITED;
            out->value = si.si_status;
            return 1;
        }
        if (errno != EINVAL) {
            return -errno;
        }
        // Linux 5.3 has pidfds but no P_PIDFD: reap by pid.
    }
    return reap_by_pid(pid, out);
}

#else

// A kqueue of its own per child, with EVFILT_PROC NOTE_EXIT on the pid: the
// kqueue fd becomes readable when the child exits, like a pidfd, so the
// loop's own kqueue (or any poller) watches it as a plain fd.
int open_exit_watch(long pid) noexcept {
    const int kq = ::kqueue();
    if (kq < 0) {
        return -errno;
    }
    if (::fcntl(kq, F_SETFD, FD_CLOEXEC) != 0) {
        const int e = errno;
        ::close(kq);
        return -e;
    }
    struct kevent change;
    EV_SET(&change, static_cast<uintptr_t>(pid), EVFILT_PROC, EV_ADD | EV_CLEAR, NOTE_EXIT, 0, 0);
    if (::kevent(kq, &change, 1, nullptr, 0, nullptr) != 0) {
        const int e = errno;
        ::close(kq);
        // ESRCH: it has already exited (a zombie on some systems); the
        // caller polls try_reap instead.
        return -e;
    }
    return kq;
}

int try_reap(long pid, int /*watch*/, child_status* out) noexcept {
    return reap_by_pid(pid, out);
}

#endif

int send_signal(long pid, int signo) noexcept {
    return ::kill(static_cast<pid_t>(pid), signo) == 0 ? 0 : -errno;
}

} // namespace coio::sys
