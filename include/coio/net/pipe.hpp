// coio/net/pipe.hpp - pipes, FIFOs and terminals as streams (asyncio's
// loop.connect_read_pipe / connect_write_pipe, with streams on top).
//
//   int fds[2]; ::pipe(fds);
//   coio::stream_reader in = coio::connect_read_pipe(fds[0]);
//   coio::stream_writer out = coio::connect_write_pipe(fds[1]);
//   out.write("hello\n");
//   std::string line = co_await in.readline();
//
// The fd may be a pipe or FIFO end, a character device (a terminal, a pty,
// /dev/null) or a socket (which then works as make_streams' would, one
// direction only). The stream takes ownership of the fd and closes it (the
// reader when it and every operation on it are gone, the writer on close()
// or write_eof() - a pipe has no half-close - or when it is gone).
// The fd is put in non-blocking mode (O_NONBLOCK, as every backend needs):
// that flag belongs to the open file description, so a duplicate of it - a
// terminal shared with the shell, stdin inherited from a parent - sees it
// too. Its close-on-exec flag is left as it is.
//
// The streams behave as stream.hpp says (readline, limits, drain's water
// marks, the timeouts of stream_options; a read_timeout closes a pipe
// reader, which has no SHUT_RD). Messages name the fd: "write to pipe (fd 7):
// Broken pipe". A reader holds no buffer while it waits, as a socket's.
//
// SIGPIPE: while a pipe writer exists on a thread, that thread blocks SIGPIPE
// and discards it, so a write to a pipe whose reader is gone fails with EPIPE
// (drain() throws net_error) instead of killing the process; the process's
// SIGPIPE disposition is never changed (lib/net/sigpipe.hpp has the policy
// and its caveats).
//
// Throws std::invalid_argument (a regular file or directory: their reads
// never wait, use a thread - coio::to_thread) or net_error (a bad fd, naming
// it) without taking the fd; std::logic_error if no loop runs on this thread.
#pragma once

#include <coio/net/stream.hpp>

namespace coio {

// A reader for the read end of a pipe, a FIFO or a terminal.
[[nodiscard]] stream_reader connect_read_pipe(int fd, stream_options opts = {});
// A writer for the write end of a pipe, a FIFO or a terminal.
[[nodiscard]] stream_writer connect_write_pipe(int fd, stream_options opts = {});

} // namespace coio
