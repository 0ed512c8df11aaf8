// log_collector/line_assembler.hpp - reassemble '\n'-terminated lines from
// fixed-size reads, in bounded memory.
//
// The collector reads a source in chunks of --chunk-size bytes (as the seeds'
// stream_logs does with read(1024)); a chunk may hold many lines, or a piece of
// one. feed() reports every line that is complete; an unfinished line waits in
// a buffer that never holds more than max_line + 4 bytes.
//
// Over-long line policy (a line longer than max_line bytes, '\n' excluded):
// nothing is dropped and memory does not grow. As soon as max_line + 1 bytes
// of a line have arrived without a '\n', the first max_line bytes go out as a
// piece (record_kind::part) - moved back by up to 3 bytes so that no UTF-8
// character is split - and the line goes on. The '\n' ends it with a final
// piece (record_kind::last). A line of exactly max_line bytes is one record.
// What this means for acknowledgements is the caller's business; the
// collector counts a split line as ONE line and acknowledges it once, after
// its last piece is written (source_task.cpp).
//
// end_of_stream() is for a connection that ends in the middle of a line: a
// partial line is never reported as complete. It is discarded (it was never
// acknowledged, so the source sends it again on the next connection), and if
// pieces of it were already reported, an `aborted` record says that they will
// not be completed.
#pragma once

#include "record_format.hpp"
#include "utf8.hpp"

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace logcollect {

class line_assembler {
public:
    explicit line_assembler(std::size_t max_line) : m_max(max_line == 0 ? 1 : max_line) {}

    // Scan `chunk`; call emit(text, kind, part) for each whole line, piece,
    // and last piece, in order. `text` is valid only during the call.
    template <class Emit>
    void feed(std::string_view chunk, Emit&& emit) {
        for (;;) {
            const std::size_t nl = chunk.find('\n');
            const std::string_view seg = chunk.substr(0, nl); // all of it if no '\n'
            if (nl != std::string_view::npos && m_buf.empty() && m_pieces == 0 &&
                seg.size() <= m_max) {
                emit(seg, record_kind::whole, std::uint32_t{0}); // common case: no copy
            } else {
                append_bounded(seg, emit);
                if (nl != std::string_view::npos) {
                    finish(emit, false);
                }
            }
            if (nl == std::string_view::npos) {
                return;
            }
            chunk.remove_prefix(nl + 1);
        }
    }

    // The stream ended (EOF, reset, shutdown) with `buffered()` bytes of an
    // unfinished line: drop them, and emit an `aborted` record if pieces of
    // that line went out. Returns the bytes dropped.
    template <class Emit>
    std::size_t end_of_stream(Emit&& emit) {
        const std::size_t dropped = m_buf.size();
        if (m_pieces > 0) {
            emit(std::string_view(), record_kind::aborted, m_pieces);
        }
        m_buf.clear();
        m_buf.shrink_to_fit();
        m_pieces = 0;
        return dropped;
    }

    // For framings other than '\n' (octet-counted syslog frames): add bytes,
    // '\n' included, to the current record, emitting pieces as feed() does,
    // then finish() it as complete (dropping one trailing '\n' if asked).
    template <class Emit>
    void append(std::string_view data, Emit&& emit) {
        append_bounded(data, emit);
    }
    template <class Emit>
    void finish(Emit&& emit, bool drop_trailing_newline) {
        if (drop_trailing_newline && !m_buf.empty() && m_buf.back() == '\n') {
            m_buf.pop_back();
        }
        if (m_pieces == 0) {
            emit(std::string_view(m_buf), record_kind::whole, std::uint32_t{0});
        } else {
            emit(std::string_view(m_buf), record_kind::last, ++m_pieces);
        }
        release();
        m_pieces = 0;
    }

    // Bytes of the unfinished line held now (<= max_line + 4, and so is the
    // buffer's capacity).
    [[nodiscard]] std::size_t buffered() const noexcept { return m_buf.size(); }
    // Pieces of the unfinished line already emitted.
    [[nodiscard]] std::uint32_t pieces() const noexcept { return m_pieces; }
    [[nodiscard]] std::size_t capacity() const noexcept { return m_buf.capacity(); }
    [[nodiscard]] std::size_t max_line() const noexcept { return m_max; }

private:
    // A finished line: empty the buffer, and give its memory back if a long
    // line made it big (a connection that sent one long message once does
    // not keep max_line bytes for ever; short lines keep theirs, no churn).
    void release() {
        if (m_buf.capacity() > keep_capacity) {
            std::string().swap(m_buf);
        } else {
            m_buf.clear();
        }
    }
    static constexpr std::size_t keep_capacity = 1024;

    // Append a '\n'-free segment, emitting pieces while the line is longer
    // than m_max. The buffer holds at most m_max + 1 bytes between calls
    // (+3 when a character was moved to the next piece).
    template <class Emit>
    void append_bounded(std::string_view seg, Emit& emit) {
        while (!seg.empty()) {
            const std::size_t room = m_max + 1 > m_buf.size() ? m_max + 1 - m_buf.size() : 0;
            const std::size_t take = seg.size() < room ? seg.size() : room;
            if (m_buf.size() + take > keep_capacity && m_buf.capacity() < m_max + 4) {
                // A long line: take the most it can need in one allocation.
                // Growing by doubling would free a chunk at every step (a
                // flood of connections left them all in malloc's free lists)
                // and end up to twice too big; pages not written yet cost
                // no memory.
                m_buf.reserve(m_max + 4);
            }
            m_buf.append(seg.substr(0, take));
            seg.remove_prefix(take);
            if (m_buf.size() > m_max) {
                const std::size_t cut = utf8_safe_cut(m_buf, m_max);
                emit(std::string_view(m_buf).substr(0, cut), record_kind::part, ++m_pieces);
                m_buf.erase(0, cut);
            }
        }
    }

    std::string m_buf;
    std::size_t m_max;
    std::uint32_t m_pieces = 0;
};

} // namespace logcollect
