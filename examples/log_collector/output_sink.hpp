// log_collector/output_sink.hpp - the one output of the collector, with group
// commit, in whole records.
//
// Every task appends its records to one buffer. Before a task acknowledges
// lines it needs them written out - write(2) completed on the file or stdout
// - so it takes the buffer's end_mark() after appending, lets the other tasks
// of this loop iteration append theirs (one yield), then calls
// flush_through(mark): the first task to get there writes the whole buffer in
// one go, the others find their mark already flushed and go straight to
// acknowledging. One write(2) per loop iteration, however many sources -
// except that a task that finds the buffer above flush_threshold writes at
// once, so the buffer stays near that size however many sources are ready.
//
// write(2) is blocking: a slow disk or a full pipe on stdout stalls the loop,
// which is the back-pressure we want (sources are not read while the output
// cannot take more). With sync on, fdatasync(2) follows each write for a
// regular file, so acknowledged lines survive a machine crash too.
//
// Integrity of an output FILE (not stdout, which may be a pipe):
//  - Whole records or nothing: when a write fails after part of the buffer
//    went out (ENOSPC on a full disk), the file is truncated back to the end
//    of the last complete record, and the failure stops the collector;
//    nothing of that buffer is acknowledged.
//  - A file that does not end in '\n' when it is opened (an earlier run was
//    killed inside a write, or the truncation failed) gets a '\n' and a
//    "torn record" marker (record_formatter::append_torn_marker) before the
//    first new record, so no record is ever glued onto a torn one.
//  - After each write the file's link count is checked: if the file was
//    removed (st_nlink == 0) its inode is invisible, so the path is opened
//    again (created) and the same buffer written there before anything is
//    acknowledged. Records acknowledged before the removal went with the
//    removed file: removing it is deleting them.
//  - reopen() opens the path again (SIGHUP, after logrotate moved the file);
//    if that fails the old file is kept.
#pragma once

#include <cstdint>
#include <functional>
#include <string>

namespace logcollect {

class output_sink {
public:
    // Appends the "torn record" marker record (torn: the bytes of the
    // incomplete record before it) to `out`. Called from the constructor on.
    using marker_fn = std::function<void(std::string& out, std::uint64_t torn)>;
    // Tells the operator something (a reopen, a removed file).
    using notice_fn = std::function<void(const std::string& text)>;

    // "-" is stdout (left open at the end); anything else is a file opened for
    // append, created 0644 if missing. Throws std::runtime_error
    // "cannot open output FILE: <errno text>".
    output_sink(std::string path, bool sync, marker_fn marker, notice_fn notice);
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

    // Open the path again (SIGHUP). Returns false, after a notice, if that
    // fails: the old file is kept. Nothing to do for stdout. Also false, with
    // failed(), if the new file ends inside a record and the marker cannot
    // be written there.
    bool reopen();

    [[nodiscard]] bool failed() const noexcept { return !m_error.empty(); }
    // "write to FILE: No space left on device"
    [[nodiscard]] const std::string& error() const noexcept { return m_error; }
    [[nodiscard]] const std::string& name() const noexcept { return m_name; }
    [[nodiscard]] std::uint64_t writes() const noexcept { return m_writes; }

    static constexpr std::size_t flush_threshold = 1U << 20U;

private:
    int open_file(std::string& error) const;
    void adopt(int fd);
    bool write_buffer();
    bool recreate_removed_file();
    void cut_torn_tail(std::size_t written);

    std::string m_name;
    std::string m_buf;
    std::string m_error;
    marker_fn m_marker;
    notice_fn m_notice;
    std::uint64_t m_flushed = 0;
    std::uint64_t m_writes = 0;
    int m_fd = -1;
    bool m_owned = false;   // a file we opened (not stdout)
    bool m_regular = false; // a regular file: fdatasync, truncate, link count
    bool m_sync = false;
};

} // namespace logcollect
