// tests/support/oom_sweep.hpp - the allocation-failure sweep (RELIABILITY
// 3, libuv's test-loop-oom.c): operator new throws std::bad_alloc at the k-th
// allocation of a cycle, for every k from 1 to the cycle's count.
//
// Each k runs in a child process (a failure may end it, and the sweep must
// go on) on a thread of its own (its thread-local caches, the frame cache
// among them, are freed when it exits), on a fresh loop. What must hold for
// every k:
//  - the error reaches the coroutine that awaited: run_until_complete ends
//    with std::bad_alloc (or net_error ENOMEM: a read found no memory for a
//    buffer; or an exception_group of them); or - a failure on a server's
//    side of a connection - the loop's exception handler gets it and the
//    cycle's client sees its connection end (the cycle throws
//    connection_lost) or had its answer already; or the cycle completes if
//    coio absorbed the failure (an allocation it can do without). Nothing
//    else comes out (the exception handler may also hear of a connection's
//    net_error: its other end failed), nothing crashes, nothing hangs;
//  - nothing leaks: every allocation made through operator new is freed
//    again once the thread ended, and the open fds are those of before;
//  - the process is fine afterwards: a second, unfailing cycle completes.
// The one other outcome allowed is coio's documented end for an allocation
// that nothing can report to (docs/reliability.md, "Out of memory"): a
// message "coio: ... out of memory ..." on stderr and abort().
//
// A test binary that uses it replaces the global operator new and delete
// (oom_sweep.cpp): list oom_sweep.cpp among that unit's sources only.
// COIO_OOM_TRACE=1 prints a backtrace at each failing allocation (resolve it
// with addr2line -e <test binary>); the failure message shows it.
#pragma once

#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <string>

namespace coio::test {

// What a cycle's client throws when the server closed its connection
// before the answer came.
struct connection_lost {};

// A cycle's client: awaits `connect`, writes "hello\n", reads the answer
// (through wait_for, so that its timer and task are in the sweep), which
// must be `answer`, closes and reads the server's EOF. Throws
// connection_lost if the server's side ended the connection first (an
// EOF, a reset, a failed handshake), and passes std::bad_alloc and
// net_error ENOMEM (its own read found no memory) through.
coio::task<> client_exchange(coio::task<coio::stream_pair> connect, std::string answer);

using cycle_fn = coio::task<> (*)();

// Sweeps `cycle` (Catch assertions; a WARN with the counts).
void sweep_allocations(cycle_fn cycle);

} // namespace coio::test
