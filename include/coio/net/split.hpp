// coio/net/split.hpp - a socket split into a read half and a write half
// (Tokio's into_split), so that one task reads while another writes.
//
//   auto [rd, wr] = coio::split(std::move(sock));
//   coio::create_task(pump_in(std::move(rd)));   // reads
//   co_await pump_out(std::move(wr));            // writes at the same time
//
// Each half is move-only and shares the socket; the fd is closed when both
// halves are gone. A half offers the operations of its side of the socket,
// with the socket's rules (socket.hpp): one operation at a time per half,
// the half and the buffer given to an awaiter must stay alive until the
// co_await finishes (write_all returns a task that keeps the socket alive on
// its own). Dropping the write half while the read half lives shuts the
// write side down once its write_all tasks are done (the peer reads EOF), as
// Tokio's OwnedWriteHalf does;
// write_half::abort() resets the connection for both halves (their
// operations in flight complete with io_status::cancelled).
#pragma once

#include <coio/net/address.hpp>
#include <coio/net/socket.hpp>
#include <coio/task.hpp>

#include <cstddef>
#include <memory>
#include <span>
#include <string_view>
#include <system_error>

namespace coio {

namespace detail {
// What both halves share.
struct split_socket {
    socket sock;
    int writers = 0; // the write_half and its write_all tasks in flight
    bool write_shut = false;
};
} // namespace detail

class read_half {
public:
    read_half() noexcept = default;
    explicit read_half(std::shared_ptr<detail::split_socket> s) noexcept : m_s(std::move(s)) {}
    read_half(read_half&&) noexcept = default;
    read_half& operator=(read_half&&) noexcept = default;
    read_half(const read_half&) = delete;
    read_half& operator=(const read_half&) = delete;
    ~read_half() = default;

    // socket::read_some / read_chunk on the shared socket.
    [[nodiscard]] socket::recv_awaiter read_some(std::span<std::byte> buf) noexcept {
        return socket::recv_awaiter(fd(), buf.data(), buf.size());
    }
    [[nodiscard]] socket::recv_awaiter read_some(std::span<char> buf) noexcept {
        return socket::recv_awaiter(fd(), buf.data(), buf.size());
    }
    [[nodiscard]] socket::chunk_awaiter read_chunk() noexcept {
        return socket::chunk_awaiter(fd());
    }
    // shutdown(SHUT_RD); returns the error (none on success).
    std::error_code shutdown() noexcept;

    [[nodiscard]] bool is_open() const noexcept { return fd() >= 0; }
    [[nodiscard]] int native_handle() const noexcept { return fd(); }
    [[nodiscard]] address local_address() const;
    [[nodiscard]] address peer_address() const;

private:
    [[nodiscard]] int fd() const noexcept { return m_s ? m_s->sock.native_handle() : -1; }
    std::shared_ptr<detail::split_socket> m_s;
};

class write_half {
public:
    write_half() noexcept = default;
    explicit write_half(std::shared_ptr<detail::split_socket> s) noexcept : m_s(std::move(s)) {
        if (m_s) {
            ++m_s->writers;
        }
    }
    write_half(write_half&&) noexcept = default;
    write_half& operator=(write_half&& o) noexcept;
    write_half(const write_half&) = delete;
    write_half& operator=(const write_half&) = delete;
    ~write_half();

    [[nodiscard]] socket::send_awaiter write_some(std::span<const std::byte> buf) noexcept {
        return socket::send_awaiter(fd(), buf.data(), buf.size());
    }
    [[nodiscard]] socket::send_awaiter write_some(std::string_view buf) noexcept {
        return socket::send_awaiter(fd(), buf.data(), buf.size());
    }
    // socket::write_all; the task keeps the socket alive while it runs.
    [[nodiscard]] task<io_result> write_all(std::span<const std::byte> buf);
    [[nodiscard]] task<io_result> write_all(std::string_view buf);
    // Half-close: shutdown(SHUT_WR), the peer reads EOF. Returns the error.
    std::error_code shutdown() noexcept;
    // Close the socket now with a reset (socket::abort), for both halves.
    void abort() noexcept;

    [[nodiscard]] bool is_open() const noexcept { return fd() >= 0; }
    [[nodiscard]] int native_handle() const noexcept { return fd(); }

private:
    [[nodiscard]] int fd() const noexcept { return m_s ? m_s->sock.native_handle() : -1; }
    void release() noexcept;
    std::shared_ptr<detail::split_socket> m_s;
};

struct split_halves {
    read_half reader;
    write_half writer;
};

// Split `s` into its two halves (one allocation for the shared socket).
split_halves split(socket s);

} // namespace coio
