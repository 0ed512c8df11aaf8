// lib/process/process_state.hpp - what a coio::process shares with the
// loop's exit watch (process.hpp has the rules).
#pragma once

#include <coio/process.hpp>
#include <coio/sync/event.hpp>
#include <coio/task.hpp>

#include <memory>
#include <optional>
#include <string>

namespace coio::detail {

struct process_state {
    long pid = 0;
    std::string program;
    int watch = -1; // pidfd (kqueue elsewhere) that turns readable at exit; -1: poll instead
    std::optional<exit_status> status; // set once reaped
    event exited;                      // set with it
    bool in_pipe = false;              // which of the child's fds are pipes to us
    bool out_pipe = false;
    bool err_pipe = false;
};

// The loop's task that waits for the child's exit and reaps it (exit_watch.cpp).
task<> watch_exit(std::shared_ptr<process_state> st);

} // namespace coio::detail
