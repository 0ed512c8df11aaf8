// lib/net/sigpipe.hpp - SIGPIPE and pipe writers.
//
// send() on a socket never raises SIGPIPE (MSG_NOSIGNAL, SO_NOSIGPIPE), but
// write(2) to a pipe or FIFO whose reader is gone does, and so does
// io_uring's IORING_OP_WRITE (it runs the same pipe_write); the default
// action kills the process. The policy: while a pipe writer (a stream made by
// connect_write_pipe, a child's stdin) exists on a thread, that thread blocks
// SIGPIPE, so the write fails with EPIPE (an io_status::reset, a net_error
// from drain()) and the signal stays pending on the thread instead of being
// delivered; when the thread's last pipe writer goes, the pending SIGPIPE is
// discarded (sigtimedwait) and the previous mask is restored. The process's
// SIGPIPE disposition is never touched, and a child gets an empty signal mask
// (sys::spawn). Writes run on the loop's thread on every backend (io_uring
// issues them from io_uring_enter or its task work there; an io-wq worker has
// every signal blocked anyway).
//
// Caveats: threads started by this thread while SIGPIPE is blocked inherit
// the blocked mask (coio's to_thread pool among them); a SIGPIPE sent to the
// process with kill(2) while every thread blocks it is discarded too.
#pragma once

namespace coio::detail {

// A pipe writer starts / ends on this thread (counted per thread).
void hold_sigpipe() noexcept;
void release_sigpipe() noexcept;

} // namespace coio::detail
