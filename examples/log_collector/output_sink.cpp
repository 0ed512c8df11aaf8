// log_collector/output_sink.cpp - write(2) with group commit (output_sink.hpp).
#include "output_sink.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>

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

} // namespace

output_sink::output_sink(std::string path, bool sync) : m_sync(sync) {
    if (path == "-") {
        m_name = "stdout";
        m_fd = STDOUT_FILENO;
    } else {
        m_name = std::move(path);
        m_fd = ::open(m_name.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (m_fd < 0) {
            throw std::runtime_error("cannot open output " + m_name + ": " + std::strerror(errno));
        }
        m_owned = true;
    }
    if (m_sync) {
        struct stat st {};
        m_sync = ::fstat(m_fd, &st) == 0 && S_ISREG(st.st_mode); // pipes, ttys: nothing to sync
    }
}

output_sink::~output_sink() {
    if (m_owned) {
        ::close(m_fd);
    }
}

bool output_sink::flush_through(std::uint64_t mark) {
    if (failed()) {
        return false;
    }
    if (m_flushed >= mark || m_buf.empty()) {
        return true;
    }
    std::size_t done = 0;
    while (done < m_buf.size()) {
        ssize_t n = ::write(m_fd, m_buf.data() + done, m_buf.size() - done);
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
        m_error = "write to " + m_name + ": " + std::strerror(errno);
        m_flushed += done;
        m_buf.clear();
        return false;
    }
    ++m_writes;
    if (m_sync && sync_data(m_fd) != 0) {
        m_error = "fdatasync " + m_name + ": " + std::strerror(errno);
        m_flushed += done;
        m_buf.clear();
        return false;
    }
    m_flushed += done;
    m_buf.clear();
    if (m_buf.capacity() > 4 * flush_threshold) {
        m_buf.shrink_to_fit(); // a burst made it big; do not keep it
    }
    return true;
}

} // namespace logcollect
