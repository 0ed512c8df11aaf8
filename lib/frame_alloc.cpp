// lib/frame_alloc.cpp - the slow paths of the coroutine frame cache
// (include/coio/detail/frame_alloc.hpp): heap allocation in whole size
// classes, and returning every cached frame to the heap at thread exit.
#include <coio/detail/frame_alloc.hpp>

#include <new>

namespace coio::detail {
namespace {

std::size_t rounded(std::size_t size) noexcept {
    return size <= frame_cache_limit ? (size + frame_granule - 1) / frame_granule * frame_granule
                                     : size;
}

#if COIO_FRAME_CACHE
// Frees the thread's cached frames when the thread exits. Its constructor runs
// on the thread's first slow-path allocation, which arms the cache: until then
// frame_free() hands frames straight back to the heap (a thread that only
// frees - a frame destroyed on a helper thread - never needs the cleanup).
struct cache_reaper {
    cache_reaper() noexcept { t_frame_cache.m_armed = true; }
    cache_reaper(const cache_reaper&) = delete;
    cache_reaper& operator=(const cache_reaper&) = delete;
    ~cache_reaper() {
        frame_cache& c = t_frame_cache;
        c.m_armed = false;
        for (std::size_t cls = 0; cls < frame_classes; ++cls) {
            while (frame_cache::node* n = c.m_head[cls]) {
                c.m_head[cls] = n->m_next;
                ::operator delete(n); // unsized: clang 14 has no sized delete by default
            }
            c.m_count[cls] = 0;
        }
    }
};
#endif

} // namespace

void* frame_alloc_slow(std::size_t size) {
#if COIO_FRAME_CACHE
    if (!t_frame_cache.m_armed) {
        thread_local cache_reaper reaper;
    }
#endif
    return ::operator new(rounded(size));
}

void frame_free_slow(void* p, std::size_t /*size*/) noexcept {
    ::operator delete(p);
}

} // namespace coio::detail
