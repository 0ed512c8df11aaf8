// lib/sys/process.hpp - the sys layer's process calls: spawn a program,
// watch and reap a child, signal it. Each returns a value or -errno; the
// process layer (lib/process/) turns failures into exceptions naming the
// program.
#pragma once

#include <cstdint>

namespace coio::sys {

// What a child's fd 0, 1 or 2 becomes: an fd of ours (>= 0, dup2'ed onto
// it), or one of these.
inline constexpr int spawn_inherit = -1;   // the parent's own
inline constexpr int spawn_devnull = -2;   // /dev/null
inline constexpr int spawn_to_stdout = -3; // fd 2 only: whatever fd 1 became

struct spawn_request {
    const char* program = nullptr; // searched in PATH if it has no '/'
    char* const* argv = nullptr;   // null-terminated; argv[0] is the program
    char* const* envp = nullptr;   // null-terminated, or null for ours
    const char* cwd = nullptr;     // null: ours
    int stdio[3] = {spawn_inherit, spawn_inherit, spawn_inherit};
    bool new_session = false; // setsid() in the child
};

// posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK) + exec, so a large
// parent is never copied, and exec's errno comes back here). The child gets
// an empty signal mask (the loop thread may block SIGPIPE) and only fds 0-2
// of ours plus those without FD_CLOEXEC - every fd coio makes has it.
// Returns the pid, or -errno (ENOENT: no such program; EACCES, ENOEXEC, ...).
long spawn(const spawn_request& r) noexcept;

// A descriptor that becomes readable when the child exits: a pidfd on
// Linux (pidfd_open, 5.3), a kqueue with EVFILT_PROC NOTE_EXIT elsewhere.
// Returns the fd (close-on-exec) or -errno (-ENOSYS: none on this system).
int open_exit_watch(long pid) noexcept;

// How a child ended.
struct child_status {
    bool exited = false; // true: it called exit (code); false: killed by signal
    int value = 0;       // the exit code, or the signal number
};

// Reap the child if it has ended (never blocks): 1 and *out filled, 0 if it
// still runs, or -errno. `watch` is open_exit_watch's fd or -1; with a pidfd
// the reap names the process by it (waitid P_PIDFD), which no recycled pid
// can confuse.
int try_reap(long pid, int watch, child_status* out) noexcept;

// kill(2). 0 or -errno (ESRCH once it has been reaped).
int send_signal(long pid, int signo) noexcept;

} // namespace coio::sys
