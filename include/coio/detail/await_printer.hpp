// coio/detail/await_printer.hpp - what an awaiter's describe function writes
// to when dump_tasks (coio/introspect.hpp) prints the chain a task waits in.
//
// An awaiter that attaches a cancel hook may pass a describe function with it
// (cancel_slot::attach); while it is attached, dump_tasks calls it with the
// awaiter and a printer. It writes one short phrase ("sleep 1.20 s left",
// "read_chunk fd 7") and, for an await that runs other chains (gather,
// wait_for), names them with chain(); they are printed below, indented.
// Called on the loop's thread while the awaiter is suspended; it must not
// throw except std::bad_alloc, and must not change anything.
#pragma once

#include <cstdint>
#include <string_view>

namespace coio::detail {

class cancel_slot;
class root_base;

class await_printer {
public:
    await_printer(const await_printer&) = delete;
    await_printer& operator=(const await_printer&) = delete;

    void text(std::string_view s);
    void number(std::uint64_t n);
    // Seconds with two decimals: "1.20 s".
    void seconds(double s);
    // Another task (a task_handle awaited): "task #4 'fetch'".
    void task(const root_base& r);
    // A chain this await runs with its own cancel slot (a gather child,
    // wait_for's awaitable): printed on its own line after this one, as
    // `label` and the chain; null for one that finished (`label` alone).
    void chain(const cancel_slot* slot, std::string_view label);

private:
    friend struct dump_writer; // lib/introspect.cpp
    explicit await_printer(void* impl) noexcept : m_impl(impl) {}
    void* m_impl;
};

} // namespace coio::detail
