// tests/faults/no_uring.cpp - run a command with io_uring denied
// (RELIABILITY 32): a seccomp filter makes io_uring_setup, io_uring_enter and
// io_uring_register fail with EPERM, as Docker's default profile or
// kernel.io_uring_disabled=2 do, for this process and what it executes.
//
//   no_uring CMD [ARGS...]
//
// Exit status: the command's; 1 if the filter cannot be installed; 127 if
// the command cannot be executed. x86_64 and aarch64 (other architectures:
// the filter allows everything and says so).
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstdio>
#include <cstring>

#if defined(__x86_64__)
#define COIO_AUDIT_ARCH AUDIT_ARCH_X86_64
#elif defined(__aarch64__)
#define COIO_AUDIT_ARCH AUDIT_ARCH_AARCH64
#endif

namespace {

constexpr sock_filter stmt(unsigned short code, unsigned k) {
    return sock_filter{code, 0, 0, k};
}
constexpr sock_filter jump(unsigned short code, unsigned k, unsigned char jt, unsigned char jf) {
    return sock_filter{code, jt, jf, k};
}
constexpr unsigned deny = SECCOMP_RET_ERRNO | (EPERM & SECCOMP_RET_DATA);

} // namespace

int main(int argc, char** argv) {
    if (argc < 2) {
        std::fprintf(stderr, "usage: no_uring CMD [ARGS...]\n");
        return 2;
    }
#if defined(COIO_AUDIT_ARCH)
    // Load the arch; another arch: allow. Load the syscall number; each of the
    // three: EPERM; the rest: allow.
    sock_filter f[] = {
        stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, arch)),
        jump(BPF_JMP | BPF_JEQ | BPF_K, COIO_AUDIT_ARCH, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        stmt(BPF_LD | BPF_W | BPF_ABS, offsetof(seccomp_data, nr)),
        jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_setup, 3, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_enter, 2, 0),
        jump(BPF_JMP | BPF_JEQ | BPF_K, __NR_io_uring_register, 1, 0),
        stmt(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        stmt(BPF_RET | BPF_K, deny),
    };
    sock_fprog prog{static_cast<unsigned short>(sizeof f / sizeof f[0]), f};
    if (::prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 ||
        ::prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog) != 0) {
        std::fprintf(stderr, "no_uring: cannot install the seccomp filter: %s\n",
                     std::strerror(errno));
        return 1;
    }
#else
    std::fprintf(stderr, "no_uring: unknown architecture, io_uring is NOT denied\n");
#endif
    ::execvp(argv[1], argv + 1);
    std::fprintf(stderr, "no_uring: cannot execute %s: %s\n", argv[1], std::strerror(errno));
    return 127;
}
