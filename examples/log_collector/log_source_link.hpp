// log_collector/log_source_link.hpp - one log_source connection: a raw
// socket (plain TCP), or the streams of a TLS session (--tls-cert). The
// connection handler (log_source.cpp) writes, reads, and ends it on purpose
// (FIN or RST) the same way over either.
#pragma once

#include <coio/net/error.hpp>
#include <coio/net/socket.hpp>
#include <coio/net/stream.hpp>
#include <coio/task.hpp>

#include <optional>
#include <span>
#include <string_view>
#include <utility>

namespace logsource {

class link {
public:
    explicit link(coio::socket s) noexcept : m_socket(std::move(s)) {}
    link(coio::stream_reader r, coio::stream_writer w)
        : m_streams(coio::stream_pair{std::move(r), std::move(w)}) {}

    // Send all of `data` (it must live until the await ends). Failures come
    // back as the io_result's status, as socket::write_all reports them; over
    // TLS, the records are written and drained.
    [[nodiscard]] coio::task<coio::io_result> write_all(std::string_view data) {
        if (!m_streams) {
            return m_socket.write_all(data);
        }
        return write_streams(&m_streams->writer, data);
    }
    // Read what is there, up to buf.size() bytes; eof status at the end.
    [[nodiscard]] coio::task<coio::io_result> read_some(std::span<char> buf) {
        if (!m_streams) {
            return read_socket(&m_socket, buf);
        }
        return read_streams(&m_streams->reader, buf);
    }
    // FIN (over TLS: close_notify, then FIN) or RST.
    void close() noexcept {
        if (m_streams) {
            m_streams->writer.close();
        } else {
            m_socket.close();
        }
    }
    void abort() noexcept {
        if (m_streams) {
            m_streams->writer.abort();
        } else {
            m_socket.abort();
        }
    }

private:
    static coio::io_result failed(const coio::net_error& e) {
        return coio::io_result{coio::io_status::reset, 0, e.code()};
    }
    static coio::task<coio::io_result> write_streams(coio::stream_writer* w,
                                                     std::string_view data) {
        coio::io_result r;
        try {
            w->write(data);
            co_await w->drain();
            r.bytes = data.size();
        } catch (const coio::net_error& e) {
            r = failed(e);
        }
        co_return r;
    }
    static coio::task<coio::io_result> read_socket(coio::socket* s, std::span<char> buf) {
        co_return co_await s->read_some(buf);
    }
    static coio::task<coio::io_result> read_streams(coio::stream_reader* rd, std::span<char> buf) {
        coio::io_result r;
        try {
            const std::string got = co_await rd->read(static_cast<std::ptrdiff_t>(buf.size()));
            got.copy(buf.data(), got.size());
            r.bytes = got.size();
            if (got.empty()) {
                r.status = coio::io_status::eof;
            }
        } catch (const coio::net_error& e) {
            r = failed(e);
        }
        co_return r;
    }

    coio::socket m_socket;
    std::optional<coio::stream_pair> m_streams;
};

} // namespace logsource
