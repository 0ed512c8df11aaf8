// lib/process/process.cpp - create_subprocess_exec and coio::process
// (process.hpp). The OS is reached through lib/sys (sys/process.hpp).
#include "sys/process.hpp"
#include "process/process_state.hpp"
#include "sys/fd.hpp"

#include <coio/event_loop.hpp>
#include <coio/gather.hpp>
#include <coio/net/error.hpp>
#include <coio/net/pipe.hpp>
#include <coio/process.hpp>

#include <cerrno>
#include <csignal>
#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>
#include <system_error>
#include <tuple>
#include <utility>
#include <vector>

namespace coio {

std::string exit_status::to_string() const {
    if (signal == 0) {
        return "exit code " + std::to_string(code);
    }
    const char* name = ::strsignal(signal);
    return "killed by signal " + std::to_string(signal) + " (" +
           (name != nullptr ? name : "unknown") + ")";
}

namespace {

// Both ends of one pipe to the child, closed unless handed on.
struct child_pipe {
    sys::unique_fd ours;   // the stream's end
    sys::unique_fd theirs; // dup2'ed onto the child's fd, closed here after the spawn
};

[[noreturn]] void throw_spawn_error(int err, const std::string& program, const char* what) {
    throw std::system_error(err, std::system_category(), std::string(what) + " '" + program + "'");
}

// A pipe whose end `child_reads` says which end the child gets.
child_pipe make_pipe(bool child_reads, const std::string& program) {
    int fds[2];
    if (const int r = sys::open_pipe(fds); r < 0) {
        throw_spawn_error(-r, program, "create_subprocess_exec: pipe for");
    }
    child_pipe p;
    p.ours.reset(child_reads ? fds[1] : fds[0]);
    p.theirs.reset(child_reads ? fds[0] : fds[1]);
    return p;
}

// The spawn request's view of a redirect: a pipe's child end, or a constant.
int stdio_of(redirect r, const child_pipe& p) noexcept {
    switch (r) {
    case redirect::inherit:
        return sys::spawn_inherit;
    case redirect::pipe:
        return p.theirs.get();
    case redirect::devnull:
        return sys::spawn_devnull;
    case redirect::to_stdout:
        return sys::spawn_to_stdout;
    }
    return sys::spawn_inherit;
}

// NUL-terminated argument and environment arrays pointing into `strings`.
std::vector<char*> pointers(std::vector<std::string>& strings) {
    std::vector<char*> out;
    out.reserve(strings.size() + 1);
    for (std::string& s : strings) {
        out.push_back(s.data());
    }
    out.push_back(nullptr);
    return out;
}

// COIO_EXIT_WATCH=poll (a test knob): no pidfd, reap by polling as on
// systems without one.
bool poll_for_exit() noexcept {
    const char* v = std::getenv("COIO_EXIT_WATCH");
    return v != nullptr && std::strcmp(v, "poll") == 0;
}

task<exit_status> wait_impl(std::shared_ptr<detail::process_state> st) {
    while (!st->status) {
        co_await st->exited.wait();
    }
    co_return *st->status;
}

task<> feed_stdin(stream_writer in, bool pipe, std::string input) {
    if (!pipe) {
        co_return;
    }
    if (!input.empty() && !in.is_closing()) {
        in.write(input);
    }
    std::exception_ptr failure;
    try {
        co_await in.drain();
    } catch (const net_error& e) {
        // A child that exits without reading its input: asyncio ignores
        // BrokenPipeError and ConnectionResetError here too.
        if (e.code() != std::errc::broken_pipe && e.code() != std::errc::connection_reset) {
            failure = std::current_exception();
        }
    }
    in.close();
    if (failure) {
        std::rethrow_exception(failure);
    }
}

task<std::string> read_all(stream_reader r, bool pipe) {
    if (!pipe) {
        co_return std::string();
    }
    co_return co_await r.read(-1);
}

task<communicate_result> communicate_impl(std::shared_ptr<detail::process_state> st,
                                          stream_writer in, stream_reader out, stream_reader err,
                                          std::string input) {
    task<> feed = feed_stdin(std::move(in), st->in_pipe, std::move(input));
    task<std::string> read_out = read_all(std::move(out), st->out_pipe);
    task<std::string> read_err = read_all(std::move(err), st->err_pipe);
    auto both = co_await gather(std::move(feed), std::move(read_out), std::move(read_err));
    communicate_result res;
    res.out = std::move(std::get<1>(both));
    res.err = std::move(std::get<2>(both));
    co_await wait_impl(st);
    co_return res;
}

} // namespace

detail::process_state& process::state() const {
    if (!m_s) {
        throw std::logic_error("coio::process: empty (default-constructed or moved-from) process");
    }
    return *m_s;
}

long process::pid() const {
    return state().pid;
}

const std::string& process::program() const {
    return state().program;
}

stream_writer& process::stdin_writer() {
    if (!state().in_pipe) {
        throw std::logic_error("coio::process: stdin of '" + m_s->program +
                               "' is not a pipe (process_options::in = redirect::pipe)");
    }
    return m_in;
}

stream_reader& process::stdout_reader() {
    if (!state().out_pipe) {
        throw std::logic_error("coio::process: stdout of '" + m_s->program +
                               "' is not a pipe (process_options::out = redirect::pipe)");
    }
    return m_out;
}

stream_reader& process::stderr_reader() {
    if (!state().err_pipe) {
        throw std::logic_error("coio::process: stderr of '" + m_s->program +
                               "' is not a pipe (process_options::err = redirect::pipe)");
    }
    return m_err;
}

task<exit_status> process::wait() {
    (void)state(); // throws for an empty process
    return wait_impl(m_s);
}

std::optional<exit_status> process::status() const {
    return state().status;
}

task<communicate_result> process::communicate(std::string input) {
    detail::process_state& st = state();
    if (!input.empty() && !st.in_pipe) {
        throw std::logic_error("coio::process::communicate: input given but stdin of '" +
                               st.program + "' is not a pipe");
    }
    return communicate_impl(m_s, m_in, m_out, m_err, std::move(input));
}

void process::send_signal(int signo) {
    detail::process_state& st = state();
    if (st.status) {
        return; // reaped: the pid may belong to someone else now
    }
    if (const int r = sys::send_signal(st.pid, signo); r < 0) {
        throw std::system_error(-r, std::system_category(),
                                "kill(" + std::to_string(st.pid) + ", " + std::to_string(signo) +
                                    ") of '" + st.program + "'");
    }
}

void process::terminate() {
    send_signal(SIGTERM);
}

void process::kill() {
    send_signal(SIGKILL);
}

process create_subprocess_exec(std::string program, std::vector<std::string> args,
                               process_options opts) {
    event_loop& loop = event_loop::running(); // throws std::logic_error without one
    if (opts.in == redirect::to_stdout || opts.out == redirect::to_stdout) {
        throw std::invalid_argument("coio::create_subprocess_exec: redirect::to_stdout is for "
                                    "stderr only");
    }
    child_pipe in, out, err;
    if (opts.in == redirect::pipe) {
        in = make_pipe(true, program);
    }
    if (opts.out == redirect::pipe) {
        out = make_pipe(false, program);
    }
    if (opts.err == redirect::pipe) {
        err = make_pipe(false, program);
    }

    std::vector<std::string> argv_strings;
    argv_strings.reserve(args.size() + 1);
    argv_strings.push_back(program);
    for (std::string& a : args) {
        argv_strings.push_back(std::move(a));
    }
    std::vector<char*> argv = pointers(argv_strings);
    std::vector<std::string> env_strings;
    std::vector<char*> envp;
    if (opts.env) {
        for (const auto& [k, v] : *opts.env) {
            env_strings.push_back(k + "=" + v);
        }
        envp = pointers(env_strings);
    }

    sys::spawn_request req;
    req.program = program.c_str();
    req.argv = argv.data();
    req.envp = opts.env ? envp.data() : nullptr;
    req.cwd = opts.cwd.empty() ? nullptr : opts.cwd.c_str();
    req.stdio[0] = stdio_of(opts.in, in);
    req.stdio[1] = stdio_of(opts.out, out);
    req.stdio[2] = stdio_of(opts.err, err);
    req.new_session = opts.new_session;
    const long pid = sys::spawn(req);
    if (pid < 0) {
        throw_spawn_error(static_cast<int>(-pid), program, "create_subprocess_exec");
    }
    in.theirs.reset();
    out.theirs.reset();
    err.theirs.reset();

    // From here on the child runs: the exit watch starts before anything
    // else can throw, so it is reaped whatever happens next.
    auto st = std::make_shared<detail::process_state>();
    st->pid = pid;
    st->program = program;
    const int watch = poll_for_exit() ? -ENOSYS : sys::open_exit_watch(pid);
    st->watch = watch >= 0 ? watch : -1; // else: poll (exit_watch.cpp)
    st->in_pipe = opts.in == redirect::pipe;
    st->out_pipe = opts.out == redirect::pipe;
    st->err_pipe = opts.err == redirect::pipe;
    loop.create_task(detail::watch_exit(st), "process " + std::to_string(pid) + " " + program);

    // Each end is released only once its stream owns it.
    stream_writer w;
    stream_reader r_out, r_err;
    if (st->in_pipe) {
        w = connect_write_pipe(in.ours.get(), opts.stream);
        (void)in.ours.release();
    }
    if (st->out_pipe) {
        r_out = connect_read_pipe(out.ours.get(), opts.stream);
        (void)out.ours.release();
    }
    if (st->err_pipe) {
        r_err = connect_read_pipe(err.ours.get(), opts.stream);
        (void)err.ours.release();
    }
    return process(std::move(st), std::move(w), std::move(r_out), std::move(r_err));
}

process create_subprocess_shell(std::string command, process_options opts) {
    std::vector<std::string> args;
    args.emplace_back("-c");
    args.push_back(std::move(command));
    return create_subprocess_exec("/bin/sh", std::move(args), std::move(opts));
}

} // namespace coio
