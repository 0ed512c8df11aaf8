// log_collector/output_sink.hpp - the one output of the collector, with group
// commit.
//
// Every task appends its records to one buffer. Before a task acknowledges
// lines it needs them written out - write(2) completed on the file or stdout
// - so it takes the buffer's end_mark() after appending, lets the other tasks
// of this loop iteration append theirs (one yield), then calls
// flush_through(mark): the first task to get there writes the whole buffer in
// one go, the others find their mark already flushed and go straight to
// acknowledging. One write(2) per loop iteration, however many sources.
//
// write(2) is blocking: a slow disk or a full pipe on stdout stalls the loop,
// which is the back-pressure we want (sources are not read while the output
// cannot take more). With sync on, fdatasync(2) follows each write for a
// regular file, so acknowledged lines survive a machine crash too.
#pragma once

#include <cstdint>
#include <string>

namespace logcollect {

class output_sink {
public:
    // "-" is stdout (left open at the end); anything else is a file opened for
    // append, created 0644 if missing. Throws std::runtime_error
    // "cannot open output FILE: <errno text>".
    explicit output_sink(std::string path, bool sync = false);
    ~output_sink();
    output_sink(const output_sink&) = delete;
    output_sink& operator=(const output_sink&) = delete;

    // Records are appended here.
    [[nodiscard]] std::string& buffer() noexcept { return m_buf; }
    // The logical offset of the end of everything appended so far.
    [[nodiscard]] std::uint64_t end_mark() const noexcept { return m_flushed + m_buf.size(); }
    // Everything up to `mark` has been written.
    [[nodiscard]] bool flushed_through(std::uint64_t mark) const noexcept {
        return m_flushed >= mark;
    }
    // Write what is buffered unless `mark` is flushed already. false if the
    // output has failed (now or before): see error().
    bool flush_through(std::uint64_t mark);
    bool flush() { return flush_through(end_mark()); }
    // The buffer is big enough to write out now, acknowledged or not.
    [[nodiscard]] bool wants_flush() const noexcept { return m_buf.size() >= flush_threshold; }

    [[nodiscard]] bool failed() const noexcept { return !m_error.empty(); }
    // "write to FILE: No space left on device"
    [[nodiscard]] const std::string& error() const noexcept { return m_error; }
    [[nodiscard]] const std::string& name() const noexcept { return m_name; }
    [[nodiscard]] std::uint64_t bytes_written() const noexcept { return m_flushed; }
    [[nodiscard]] std::uint64_t writes() const noexcept { return m_writes; }

    static constexpr std::size_t flush_threshold = 1U << 20U;

private:
    std::string m_name;
    std::string m_buf;
    std::string m_error;
    std::uint64_t m_flushed = 0;
    std::uint64_t m_writes = 0;
    int m_fd = -1;
    bool m_owned = false;
    bool m_sync = false;
};

} // namespace logcollect
