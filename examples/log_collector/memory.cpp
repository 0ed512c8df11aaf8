// log_collector/memory.cpp - malloc_trim after a flood (memory.hpp).
#include "memory.hpp"

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace logcollect {

std::size_t memory_trimmer::sample() noexcept {
#if defined(__GLIBC__) && (__GLIBC__ > 2 || (__GLIBC__ == 2 && __GLIBC_MINOR__ >= 33))
    const std::size_t free_now = ::mallinfo2().fordblks;
    if (free_now < m_low) {
        m_low = free_now;
    }
    if (free_now - m_low <= m_slack) {
        return 0;
    }
    (void)::malloc_trim(0);
    m_low = free_now; // trimming does not change fordblks: count from here
    return free_now;
#else
    (void)m_slack;
    return 0;
#endif
}

} // namespace logcollect
