// lib/net/pipe.cpp - connect_read_pipe / connect_write_pipe (net/pipe.hpp):
// a stream_state whose fd is not a socket (stream_state.hpp's pipe_fd).
#include "net/sigpipe.hpp"
#include "net/stream_state.hpp"
#include "sys/fd.hpp"

#include <coio/event_loop.hpp>
#include <coio/net/error.hpp>
#include <coio/net/pipe.hpp>

#include <memory>
#include <stdexcept>
#include <string>

namespace coio {

namespace {

std::shared_ptr<detail::stream_state> adopt(int fd, const stream_options& opts, bool writer) {
    (void)event_loop::running(); // throws std::logic_error without a loop
    detail::check_stream_options(opts);
    const char* const call = writer ? "connect_write_pipe" : "connect_read_pipe";
    const sys::fd_kind_result k = sys::kind_of(fd);
    if (k.error != 0) {
        detail::throw_net_error(-k.error, call, "fd " + std::to_string(fd));
    }
    if (k.kind == sys::fd_kind::other) {
        throw std::invalid_argument(std::string("coio::") + call + ": fd " + std::to_string(fd) +
                                    " is not a pipe, FIFO, character device or socket");
    }
    if (const int r = sys::set_nonblocking(fd); r < 0) {
        detail::throw_net_error(-r, std::string(call) + ": fcntl(O_NONBLOCK)",
                                "fd " + std::to_string(fd));
    }
    const int pipe_fd = k.kind == sys::fd_kind::socket ? -1 : fd;
    auto st = std::make_shared<detail::stream_state>(socket(fd), opts, pipe_fd);
    if (writer && st->is_pipe()) {
        detail::hold_sigpipe();
        st->sigpipe_held = true;
    }
    return st;
}

} // namespace

stream_reader connect_read_pipe(int fd, stream_options opts) {
    return stream_reader(adopt(fd, opts, false));
}

stream_writer connect_write_pipe(int fd, stream_options opts) {
    return stream_writer(adopt(fd, opts, true));
}

} // namespace coio
