// log_collector/output_sink.cpp - write(2) with group commit, whole records
// only (output_sink.hpp).
#include "output_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string_view>

namespace logcollect {

namespace {

// fdatasync(2); macOS declares none, fsync is the nearest.
int sync_data(int fd) {
#ifdef __APPLE__
    return ::fsync(fd);
#else
    return ::fdatasync(fd);
#endif
}

std::string errno_text() {
    return std::strerror(errno);
}

// How far back from the end of a file to look for its last '\n'.
constexpr off_t tail_window = 64 * 1024;

} // namespace

output_sink::output_sink(std::string path, bool sync, marker_fn marker, notice_fn notice)
    : m_marker(std::move(marker)), m_notice(std::move(notice)), m_sync(sync) {
    if (path == "-") {
        m_name = "stdout";
        m_fd = STDOUT_FILENO;
        struct stat st {};
        m_regular = ::fstat(m_fd, &st) == 0 && S_ISREG(st.st_mode); // pipes, ttys: nothing to sync
        return;
    }
    m_name = std::move(path);
    std::string error;
    const int fd = open_file(error);
    if (fd < 0) {
        throw std::runtime_error(error);
    }
    m_owned = true;
    adopt(fd);
    if (failed()) {
        throw std::runtime_error(m_error);
    }
}

output_sink::~output_sink() {
    if (m_owned) {
        ::close(m_fd);
    }
}

// Read-write if we may (to look at the end of the file), else write-only.
int output_sink::open_file(std::string& error) const {
    constexpr int flags = O_CREAT | O_APPEND | O_CLOEXEC;
    int fd = ::open(m_name.c_str(), O_RDWR | flags, 0644);
    if (fd < 0 && errno == EACCES) {
        fd = ::open(m_name.c_str(), O_WRONLY | flags, 0644);
    }
    if (fd < 0) {
        error = "cannot open output " + m_name + ": " + errno_text();
    }
    return fd;
}

// Take `fd` as the output. If it is a regular file that ends inside a
// record, write a '\n' and the torn-record marker at once (a failure to do so
// is the output's failure).
void output_sink::adopt(int fd) {
    m_fd = fd;
    struct stat st {};
    m_regular = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
    if (!m_regular || st.st_size == 0) {
        return;
    }
    const off_t from = st.st_size > tail_window ? st.st_size - tail_window : 0;
    std::string tail(static_cast<std::size_t>(st.st_size - from), '\0');
    const ssize_t n = ::pread(fd, tail.data(), tail.size(), from);
    if (n != static_cast<ssize_t>(tail.size()) || tail.back() == '\n') {
        return; // whole records (or write-only: we cannot tell)
    }
    const std::size_t nl = tail.rfind('\n');
    const std::uint64_t torn = nl == std::string::npos ? tail.size() : tail.size() - nl - 1;
    std::string marker = "\n";
    m_marker(marker, torn);
    m_notice("output " + m_name + " ends inside a record (" + std::to_string(torn) +
             " bytes after its last newline): writing a newline and a torn-record marker");
    std::size_t done = 0;
    while (done < marker.size()) {
        const ssize_t w = ::write(fd, marker.data() + done, marker.size() - done);
        if (w < 0 && errno != EINTR) {
            m_error = "write to " + m_name + ": " + errno_text();
            return; // the next start tries again: the file still ends inside a record
        }
        done += w > 0 ? static_cast<std::size_t>(w) : 0;
    }
}

bool output_sink::flush_through(std::uint64_t mark) {
    if (failed()) {
        return false;
    }
    if (m_flushed >= mark || m_buf.empty()) {
        return true;
    }
    bool ok = write_buffer();
    // A removed file: write the same records again where they can be seen,
    // before anything is acknowledged. (Three times in a row is a fight.)
    for (int again = 0; ok && m_owned && m_regular; ++again) {
        struct stat st {};
        if (::fstat(m_fd, &st) != 0 || st.st_nlink > 0) {
            break;
        }
        if (again == 3) {
            m_error = "output " + m_name + " was removed again and again; giving up";
            ok = false;
            break;
        }
        ok = recreate_removed_file() && write_buffer();
    }
    if (!ok) {
        m_buf.clear(); // none of it will ever be acknowledged
        return false;
    }
    m_flushed += m_buf.size();
    m_buf.clear();
    if (m_buf.capacity() > 4 * flush_threshold) {
        m_buf.shrink_to_fit(); // a burst made it big; do not keep it
    }
    return true;
}

// The whole buffer, with write(2) retried across short writes. On a failure,
// the error is set and a torn last record cut off.
bool output_sink::write_buffer() {
    std::size_t done = 0;
    while (done < m_buf.size()) {
        const ssize_t n = ::write(m_fd, m_buf.data() + done, m_buf.size() - done);
        if (n >= 0) {
            done += static_cast<std::size_t>(n);
            continue;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN) { // somebody made our stdout non-blocking: wait for room
            pollfd p{m_fd, POLLOUT, 0};
            (void)::poll(&p, 1, -1);
            continue;
        }
        m_error = "write to " + m_name + ": " + errno_text();
        cut_torn_tail(done);
        return false;
    }
    ++m_writes;
    if (m_sync && m_regular && sync_data(m_fd) != 0) {
        m_error = "fdatasync " + m_name + ": " + errno_text();
        return false;
    }
    return true;
}

// A write failed after `written` bytes of the buffer went out: truncate the
// file back to the end of the last whole record among them.
void output_sink::cut_torn_tail(std::size_t written) {
    if (!m_owned || !m_regular || written == 0) {
        return;
    }
    const std::size_t nl = std::string_view(m_buf).substr(0, written).rfind('\n');
    const std::size_t torn = nl == std::string_view::npos ? written : written - nl - 1;
    if (torn == 0) {
        return; // the write stopped between two records
    }
    struct stat st {};
    if (::fstat(m_fd, &st) != 0 || static_cast<std::uint64_t>(st.st_size) < torn ||
        ::ftruncate(m_fd, st.st_size - static_cast<off_t>(torn)) != 0) {
        m_error += " (and the incomplete record it left could not be truncated: " + errno_text() +
                   "; the next start marks it)";
        return;
    }
    m_error += " (the incomplete record it left was truncated away)";
}

bool output_sink::recreate_removed_file() {
    m_notice("output " + m_name +
             " was removed: creating it again and writing the last records there (records "
             "acknowledged before went with the removed file)");
    std::string error;
    const int fd = open_file(error);
    if (fd < 0) {
        m_error = error + " (after the output was removed)";
        return false;
    }
    ::close(m_fd);
    adopt(fd);
    return !failed();
}

bool output_sink::reopen() {
    if (!m_owned) {
        m_notice("the output is stdout: nothing to reopen");
        return true;
    }
    if (failed()) {
        return false;
    }
    std::string error;
    const int fd = open_file(error);
    if (fd < 0) {
        m_notice(error + "; still writing to the file opened before");
        return false;
    }
    ::close(m_fd);
    adopt(fd);
    if (failed()) {
        return false; // the torn-record marker could not be written: error() says why
    }
    m_notice("reopened output " + m_name);
    return true;
}

} // namespace logcollect
