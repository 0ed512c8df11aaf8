// log_collector/memory.hpp - give the memory that malloc keeps but nothing
// uses back to the system.
//
// Why: after a flood - 5,000 push connections each holding a 65,000-byte
// unfinished message, then closing - glibc's malloc kept all of it: 312 MiB
// RSS with every connection gone. Such buffers are below malloc's mmap
// threshold, so they come from the heap, and free() only returns the top of
// the heap to the system, which small allocations made later keep pinned.
// malloc_trim(0) also returns the free pages inside the heap.
//
// When: the caller samples once a second. malloc_trim walks the heap, so it
// runs only when malloc's free memory (mallinfo2's fordblks) has grown by
// more than `slack` since its lowest point after the last trim - memory was
// freed, not just left free - and not again until more is freed. Other
// allocators than glibc's: nothing is done.
#pragma once

#include <cstddef>

namespace logcollect {

class memory_trimmer {
public:
    explicit memory_trimmer(std::size_t slack) noexcept : m_slack(slack) {}

    // Sample; trim if enough was freed. Returns the bytes malloc held free
    // when it trimmed, else 0.
    std::size_t sample() noexcept;

private:
    std::size_t m_slack;
    std::size_t m_low = static_cast<std::size_t>(-1); // free bytes, lowest since the last trim
};

} // namespace logcollect
