// log_collector/syslog_framing.hpp - split a syslog-over-TCP stream into
// messages (RFC 6587).
//
// Two framings exist and senders differ, so each frame is classified on its
// own, as RFC 6587 section 3.4 suggests:
//   octet counting (3.4.1):   MSG-LEN SP SYSLOG-MSG, MSG-LEN = [1-9][0-9]*
//   non-transparent (3.4.2):  SYSLOG-MSG LF
// A frame that starts with a digit run (no leading zero, at most 10 digits)
// followed by a space is octet-counted; anything else - a syslog message
// starts with '<' - runs to the next LF. (`logger --tcp` sends LF frames,
// `logger --tcp --octet-count` octet-counted ones.)
//
// A count above max_frame is a framing error (counted by framing_errors()):
// trusting it would swallow the frames that follow - a 10-digit count, up to
// 10 GB of them - into one record. The frame is read as LF-framed instead,
// its digits and space included, which resynchronises at the next LF
// (rsyslog switches to LF framing on a too-large frame in the same way).
//
// Messages are emitted like lines (line_assembler.hpp): one record each, or
// pieces when longer than max_line; memory stays bounded whatever MSG-LEN
// claims. A trailing LF inside an octet-counted message is dropped; empty LF
// frames (a stray newline between frames) are skipped. At the end of the
// stream a message that is not finished is emitted as it is (push mode has no
// acknowledgement, so nobody would send it again); for an octet-counted one
// that is shorter than announced, end_of_stream() returns true.
#pragma once

#include "line_assembler.hpp"

#include <cstdint>
#include <string>
#include <string_view>

namespace logcollect {

class syslog_deframer {
public:
    // Messages longer than max_line bytes go out in pieces; octet counts above
    // max_frame are framing errors.
    syslog_deframer(std::size_t max_line, std::uint64_t max_frame)
        : m_msg(max_line), m_max_frame(max_frame) {}

    // emit(text, kind, part, framing) for every message or piece.
    template <class Emit>
    void feed(std::string_view data, Emit&& emit) {
        while (!data.empty()) {
            switch (m_state) {
            case state::start:
                if (data[0] == '\n') {
                    data.remove_prefix(1); // empty frame
                } else if (data[0] >= '1' && data[0] <= '9') {
                    m_digits.assign(1, data[0]);
                    data.remove_prefix(1);
                    m_state = state::digits;
                } else {
                    m_state = state::lf_body;
                }
                break;
            case state::digits:
                if (data[0] >= '0' && data[0] <= '9' && m_digits.size() < 10) {
                    m_digits += data[0];
                    data.remove_prefix(1);
                } else if (data[0] == ' ') {
                    m_remaining = std::stoull(m_digits);
                    data.remove_prefix(1);
                    if (m_remaining > m_max_frame) { // framing error: read to LF instead
                        ++m_framing_errors;
                        m_digits += ' ';
                        m_msg.append(m_digits, with_framing(emit, "lf"));
                        m_state = state::lf_body;
                    } else {
                        m_state = state::octet_body;
                    }
                    m_digits.clear();
                } else { // not a length: the digits begin an LF-framed message
                    m_state = state::lf_body;
                    m_msg.append(m_digits, with_framing(emit, "lf"));
                    m_digits.clear();
                }
                break;
            case state::lf_body: {
                const std::size_t nl = data.find('\n');
                if (nl == std::string_view::npos) {
                    m_msg.append(data, with_framing(emit, "lf"));
                    data = {};
                } else {
                    m_msg.append(data.substr(0, nl), with_framing(emit, "lf"));
                    m_msg.finish(with_framing(emit, "lf"), false);
                    data.remove_prefix(nl + 1);
                    m_state = state::start;
                }
                break;
            }
            case state::octet_body: {
                const std::size_t take =
                    data.size() < m_remaining ? data.size() : static_cast<std::size_t>(m_remaining);
                m_msg.append(data.substr(0, take), with_framing(emit, "octet"));
                data.remove_prefix(take);
                m_remaining -= take;
                if (m_remaining == 0) {
                    m_msg.finish(with_framing(emit, "octet"), true);
                    m_state = state::start;
                }
                break;
            }
            }
        }
    }

    // The connection ended: emit what is left. Returns true if an
    // octet-counted message was cut short.
    template <class Emit>
    bool end_of_stream(Emit&& emit) {
        bool truncated = false;
        switch (m_state) {
        case state::start:
            break;
        case state::digits:
            m_msg.append(m_digits, with_framing(emit, "lf"));
            m_msg.finish(with_framing(emit, "lf"), false);
            break;
        case state::lf_body:
            m_msg.finish(with_framing(emit, "lf"), false);
            break;
        case state::octet_body:
            m_msg.finish(with_framing(emit, "octet"), true);
            truncated = true;
            break;
        }
        m_state = state::start;
        m_digits.clear();
        return truncated;
    }

    // Octet counts above max_frame seen so far.
    [[nodiscard]] std::uint64_t framing_errors() const noexcept { return m_framing_errors; }
    // A message has begun and is not finished.
    [[nodiscard]] bool in_message() const noexcept { return m_state != state::start; }
    // Bytes of the unfinished message held now.
    [[nodiscard]] std::size_t buffered() const noexcept { return m_msg.buffered(); }

private:
    enum class state : std::uint8_t { start, digits, lf_body, octet_body };

    template <class Emit>
    static auto with_framing(Emit& emit, std::string_view framing) {
        return [&emit, framing](std::string_view text, record_kind kind, std::uint32_t part) {
            emit(text, kind, part, framing);
        };
    }

    line_assembler m_msg; // the current message, bounded as a line
    std::string m_digits;
    std::uint64_t m_max_frame;
    std::uint64_t m_remaining = 0;
    std::uint64_t m_framing_errors = 0;
    state m_state = state::start;
};

} // namespace logcollect
