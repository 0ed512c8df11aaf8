// lib/backend/valgrind_marks.hpp - telling valgrind what the kernel wrote
// through the io_uring rings.
//
// Memcheck follows the syscalls a program makes; it does not know that a
// completed io_uring read has filled the caller's buffer (nor the peer
// address of an accept, nor a recvmsg's name and control areas). Without a
// mark, every byte read through the ring looks uninitialised, and the first
// branch on it is reported. Under valgrind (RUNNING_ON_VALGRIND) the io_uring
// backend marks those bytes defined when it delivers a completion; outside
// valgrind the check is a few instructions. Built in when valgrind's header
// is installed (scripts/ install it; it is only a header).
#pragma once

#include <coio/detail/io_op.hpp>

#include <sys/socket.h>
#include <sys/uio.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#if __has_include(<valgrind/memcheck.h>)
#include <valgrind/memcheck.h>
#define COIO_VALGRIND_MARKS 1
#else
#define COIO_VALGRIND_MARKS 0
#endif

namespace coio::detail {

inline void mark_defined([[maybe_unused]] const void* p, [[maybe_unused]] std::size_t n) noexcept {
#if COIO_VALGRIND_MARKS
    if (p != nullptr && n > 0) {
        (void)VALGRIND_MAKE_MEM_DEFINED(p, n);
    }
#endif
}

// `op` completed with `res` (its CQE's result): mark what the kernel wrote.
inline void mark_kernel_writes([[maybe_unused]] const io_op& op,
                               [[maybe_unused]] int res) noexcept {
#if COIO_VALGRIND_MARKS
    if (RUNNING_ON_VALGRIND == 0 || res < 0) {
        return;
    }
    const auto n = static_cast<std::size_t>(res);
    switch (op.m_code) {
    case op_code::recv:
    case op_code::read:
        mark_defined(op.m_arg.buf.data, std::min(n, op.m_arg.buf.size));
        break;
    case op_code::recv_pooled:
    case op_code::read_pooled:
        mark_defined(op.m_arg.lent.data, n);
        break;
    case op_code::accept:
        if (op.m_arg.peer.len != nullptr) {
            mark_defined(op.m_arg.peer.len, sizeof *op.m_arg.peer.len);
            mark_defined(op.m_arg.peer.addr, *op.m_arg.peer.len);
        }
        break;
    case op_code::recvmsg: {
        const auto* m = static_cast<const msghdr*>(op.m_arg.msg);
        mark_defined(m, sizeof *m); // the kernel updated the lengths and flags
        mark_defined(m->msg_name, m->msg_namelen);
        mark_defined(m->msg_control, m->msg_controllen);
        std::size_t left = n;
        for (std::size_t i = 0; i < m->msg_iovlen && left > 0; ++i) {
            const std::size_t k = std::min(left, m->msg_iov[i].iov_len);
            mark_defined(m->msg_iov[i].iov_base, k);
            left -= k;
        }
        break;
    }
    default:
        break;
    }
#endif
}

} // namespace coio::detail
