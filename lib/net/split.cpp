// lib/net/split.cpp - read_half / write_half (split.hpp).
#include <coio/net/split.hpp>

#include <cerrno>

namespace coio {

namespace {

// The last writer (the write_half or a write_all task) is gone: shut the
// write side if the read side still holds the socket.
void writer_done(const std::shared_ptr<detail::split_socket>& s) noexcept {
    if (--s->writers == 0 && s.use_count() > 1 && !s->write_shut && s->sock.is_open()) {
        s->write_shut = true;
        (void)s->sock.shutdown(shutdown_how::write);
    }
}

// The socket's write_all, on the shared state, so that the task keeps the
// socket alive whatever happens to the write_half.
task<io_result> write_all_shared(std::shared_ptr<detail::split_socket> s,
                                 std::span<const std::byte> buf) {
    if (!s) {
        co_return detail::make_io_result(-EBADF, 0);
    }
    ++s->writers;
    struct done {
        const std::shared_ptr<detail::split_socket>& s;
        ~done() { writer_done(s); }
    } guard{s};
    co_return co_await s->sock.write_all(buf);
}

} // namespace

std::error_code read_half::shutdown() noexcept {
    if (!m_s) {
        return std::make_error_code(std::errc::bad_file_descriptor);
    }
    return m_s->sock.shutdown(shutdown_how::read);
}

address read_half::local_address() const {
    return m_s ? m_s->sock.local_address() : address{};
}

address read_half::peer_address() const {
    return m_s ? m_s->sock.peer_address() : address{};
}

write_half& write_half::operator=(write_half&& o) noexcept {
    if (this != &o) {
        release();
        m_s = std::move(o.m_s);
    }
    return *this;
}

write_half::~write_half() {
    release();
}

void write_half::release() noexcept {
    if (m_s) {
        writer_done(m_s); // the read half lives on: the peer still gets its EOF
        m_s.reset();
    }
}

task<io_result> write_half::write_all(std::span<const std::byte> buf) {
    return write_all_shared(m_s, buf);
}

task<io_result> write_half::write_all(std::string_view buf) {
    return write_all_shared(m_s, std::as_bytes(std::span(buf.data(), buf.size())));
}

std::error_code write_half::shutdown() noexcept {
    if (!m_s || !m_s->sock.is_open()) {
        return std::make_error_code(std::errc::bad_file_descriptor);
    }
    if (m_s->write_shut) {
        return {};
    }
    m_s->write_shut = true;
    return m_s->sock.shutdown(shutdown_how::write);
}

void write_half::abort() noexcept {
    if (m_s) {
        m_s->sock.abort();
    }
}

split_halves split(socket s) {
    auto shared = std::make_shared<detail::split_socket>();
    shared->sock = std::move(s);
    return {read_half(shared), write_half(shared)};
}

} // namespace coio
