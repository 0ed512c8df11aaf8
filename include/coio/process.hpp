// coio/process.hpp - child processes (asyncio's create_subprocess_exec and
// asyncio.subprocess.Process).
//
//   coio::process p = coio::create_subprocess_exec("sort", {"-r"},
//       {.in = coio::redirect::pipe, .out = coio::redirect::pipe});
//   auto [out, err] = co_await p.communicate("b\na\n");   // out == "b\na\n"
//   coio::exit_status st = co_await p.wait();              // st.success()
//
// Spawning: posix_spawn (glibc: clone(CLONE_VM | CLONE_VFORK) + exec, so no
// copy of a large parent and no fork in a threaded one). A program without a
// '/' is looked up in PATH. The call returns once the child runs the program
// (nothing to await: asyncio's is a coroutine), or throws std::system_error
// naming the program and exec's error: "create_subprocess_exec 'nope': No
// such file or directory". The child gets fds 0-2 as asked and no other fd of
// coio's (every fd coio makes is close-on-exec), an empty signal mask, and
// the parent's signal dispositions.
//
// Pipes: each redirect::pipe end is a stream on the parent's side
// (net/pipe.hpp): stdin_writer(), stdout_reader(), stderr_reader(). They
// follow net/stream.hpp (write/drain, readline, read(n), limits, timeouts from
// process_options::stream). Close stdin_writer() (close() or write_eof()) to
// send EOF. A write to a child that exited without reading fails with EPIPE
// (drain() throws net_error) and never kills this process (SIGPIPE, see
// net/pipe.hpp).
//
// Exit: the loop watches the child's exit (a pidfd on Linux, waited for by
// the backend like any fd; a kqueue EVFILT_PROC on macOS/BSD) and reaps it
// (waitid(P_PIDFD)), so no zombie is left, whether or not anyone waits:
//  - a process dropped while its child runs leaves the child running (as
//    asyncio does; use kill() first to stop it) and the loop reaps it in the
//    background when it exits; its pipes are closed when dropped;
//  - a child still running when the loop ends (run() returns) cannot be
//    reaped by that loop: the loop's exception handler is told once, naming
//    the pid and program, and the child is left running.
// The exit watch is a task of the loop's, named "process <pid> <program>":
// it appears in all_tasks() and dump_tasks().
//
// Don't reap coio's children yourself (waitpid(-1), SIGCHLD set to SIG_IGN):
// their status would be lost (wait() then reports exit code 255 and the
// error is reported to the exception handler).
//
// One loop: a process belongs to the loop that was running when it was
// created, and is used on that loop's thread.
#pragma once

#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace coio {

// What one of the child's fds 0, 1, 2 becomes (asyncio's stdin=/stdout=/
// stderr= values).
enum class redirect : unsigned char {
    inherit,   // ours (asyncio: None)
    pipe,      // a pipe to this process: a stream (asyncio.subprocess.PIPE)
    devnull,   // /dev/null (DEVNULL)
    to_stdout, // stderr only: wherever stdout goes (STDOUT)
};

struct process_options {
    redirect in = redirect::inherit;  // the child's stdin
    redirect out = redirect::inherit; // stdout
    redirect err = redirect::inherit; // stderr
    // The child's whole environment, if set (asyncio's env=); else ours.
    std::optional<std::map<std::string, std::string>> env{};
    std::string cwd{};        // the child's working directory; empty: ours
    bool new_session = false; // setsid() in the child (start_new_session)
    stream_options stream{};  // limits and timeouts of the pipe streams
};

// How a child ended.
struct exit_status {
    int code = 0;   // its exit code, when it exited
    int signal = 0; // the signal that ended it, 0 if it exited

    [[nodiscard]] bool exited() const noexcept { return signal == 0; }
    [[nodiscard]] bool success() const noexcept { return signal == 0 && code == 0; }
    // asyncio's returncode: the code, or minus the signal number.
    [[nodiscard]] int returncode() const noexcept { return signal != 0 ? -signal : code; }
    // "exit code 3" or "killed by signal 9 (Killed)".
    [[nodiscard]] std::string to_string() const;
    friend bool operator==(const exit_status&, const exit_status&) = default;
};

// communicate()'s outcome: everything the child wrote to its stdout and
// stderr pipes (empty for a stream that is not a pipe).
struct communicate_result {
    std::string out;
    std::string err;
};

namespace detail {
struct process_state;
}

class process {
public:
    process() noexcept = default;
    // (detail) Made by create_subprocess_exec.
    process(std::shared_ptr<detail::process_state> s, stream_writer in, stream_reader out,
            stream_reader err) noexcept
        : m_s(std::move(s)), m_in(std::move(in)), m_out(std::move(out)), m_err(std::move(err)) {}
    process(process&&) noexcept = default;
    process& operator=(process&&) noexcept = default;
    process(const process&) = delete;
    process& operator=(const process&) = delete;
    // Closes this object's pipe streams (unless moved out) and leaves the
    // child to the loop's background reap (see "Exit" above).
    ~process() = default;

    [[nodiscard]] bool valid() const noexcept { return static_cast<bool>(m_s); }
    [[nodiscard]] long pid() const;
    // The program as given to create_subprocess_exec.
    [[nodiscard]] const std::string& program() const;

    // The parent's ends of the pipes. Throw std::logic_error if that stream
    // was not redirect::pipe. The references live as long as this object;
    // copy the stream out to keep it longer.
    [[nodiscard]] stream_writer& stdin_writer();
    [[nodiscard]] stream_reader& stdout_reader();
    [[nodiscard]] stream_reader& stderr_reader();

    // Wait for the child to end (asyncio's wait()). Suspends until then; any
    // number of tasks may wait. A cancellation point (the child is not
    // touched). Does not read the pipes: a child blocked writing to a full
    // stdout pipe nobody reads never ends (use communicate()).
    [[nodiscard]] task<exit_status> wait();
    // The status once the child has been reaped, else nothing (asyncio's
    // returncode attribute).
    [[nodiscard]] std::optional<exit_status> status() const;

    // asyncio's communicate(input): writes `input` to stdin (if it is a pipe)
    // and closes it, reads stdout and stderr to their ends at the same time
    // (no deadlock however much either side writes), then waits for the
    // child. A child that exits without reading its input is not an error
    // (EPIPE is ignored, as asyncio does). Throws std::logic_error for
    // non-empty input without a stdin pipe, or when a read of stdout/stderr
    // is already in progress. The whole output is kept in memory; read the
    // streams yourself to bound it.
    [[nodiscard]] task<communicate_result> communicate(std::string input = {});

    // Send a signal (asyncio's send_signal, terminate = SIGTERM, kill =
    // SIGKILL). A child already reaped is left alone (nothing is sent, so no
    // recycled pid can be hit). Throws std::system_error if kill(2) fails.
    void send_signal(int signo);
    void terminate();
    void kill();

private:
    [[nodiscard]] detail::process_state& state() const;
    std::shared_ptr<detail::process_state> m_s; // shared with the loop's exit watch
    stream_writer m_in;                         // empty unless redirect::pipe
    stream_reader m_out;
    stream_reader m_err;
};

// Start `program` with `args` (argv[1...]; argv[0] is the program). Needs a
// running loop (std::logic_error otherwise). Throws std::system_error naming
// the program when it cannot be started, std::invalid_argument for a
// redirect::to_stdout other than stderr's.
[[nodiscard]] process create_subprocess_exec(std::string program,
                                             std::vector<std::string> args = {},
                                             process_options opts = {});

// asyncio's create_subprocess_shell: /bin/sh -c `command`.
[[nodiscard]] process create_subprocess_shell(std::string command, process_options opts = {});

} // namespace coio
