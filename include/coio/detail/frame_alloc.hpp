// coio/detail/frame_alloc.hpp - where coroutine frames come from.
//
// Every coio promise (task, root, gather child) allocates its frame here. A
// frame is rounded up to a multiple of frame_granule bytes; frames up to
// frame_cache_limit bytes are recycled through a per-thread free list per size
// class, so the usual create/await/destroy cycle of a task costs a few loads
// and stores instead of a malloc/free pair (measured by bench/task_await and
// bench/create_task). Larger frames go straight to ::operator new.
//
// Bounds: each class keeps at most frame_cache_depth(class) free frames (256,
// at most 32 KiB); the rest go back to the heap, and all of it is freed when
// the thread exits. A frame freed on
// another thread than the one that allocated it simply joins that thread's
// list. Under AddressSanitizer the cache is off, so a use after free of a
// frame is still reported.
#pragma once

#include <cstddef>
#include <cstdint>

#if defined(__SANITIZE_ADDRESS__)
#define COIO_FRAME_CACHE 0
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define COIO_FRAME_CACHE 0
#endif
#endif
#ifndef COIO_FRAME_CACHE
#define COIO_FRAME_CACHE 1
#endif

namespace coio::detail {

// 16 bytes, malloc's own granule: a frame costs what it needs (a coarser
// granule wasted 32 bytes per frame on average, per connection twice).
inline constexpr std::size_t frame_granule = 16;
inline constexpr std::size_t frame_classes = 128; // frames up to 2 KiB are cached
inline constexpr std::size_t frame_cache_limit = frame_granule * frame_classes;
// Free frames kept per class: 256, or fewer for large frames so that a class
// keeps at most 32 KiB (the whole cache at most 4 MiB, and far less in
// practice: a program uses a handful of frame sizes).
inline constexpr std::uint32_t frame_cache_depth(std::size_t cls) noexcept {
    const std::size_t by_bytes = (32 * 1024) / ((cls + 1) * frame_granule);
    return static_cast<std::uint32_t>(by_bytes < 256 ? by_bytes : 256);
}

struct frame_cache {
    struct node {
        node* m_next;
    };
    node* m_head[frame_classes];
    std::uint32_t m_count[frame_classes];
    bool m_armed; // thread-exit cleanup registered
};

// Trivially destructible and constant-initialised, so access is a plain TLS
// load. initial-exec: coio is linked into executables (static library); the
// few bytes come from the static TLS block even if it ends up in a dlopen()ed
// object, which glibc reserves surplus space for.
#if COIO_FRAME_CACHE
inline thread_local constinit frame_cache t_frame_cache
    __attribute__((tls_model("initial-exec"))) = {};
#endif

void* frame_alloc_slow(std::size_t size);
void frame_free_slow(void* p, std::size_t size) noexcept;

inline void* frame_alloc(std::size_t size) {
#if COIO_FRAME_CACHE
    const std::size_t cls = (size - 1) / frame_granule; // size > 0 for any frame
    if (cls < frame_classes) {
        frame_cache& c = t_frame_cache;
        if (frame_cache::node* n = c.m_head[cls]) {
            c.m_head[cls] = n->m_next;
            --c.m_count[cls];
            return n;
        }
    }
#endif
    return frame_alloc_slow(size);
}

inline void frame_free(void* p, std::size_t size) noexcept {
#if COIO_FRAME_CACHE
    const std::size_t cls = (size - 1) / frame_granule;
    if (cls < frame_classes) {
        frame_cache& c = t_frame_cache;
        if (c.m_count[cls] < frame_cache_depth(cls) && c.m_armed) {
            auto* n = static_cast<frame_cache::node*>(p);
            n->m_next = c.m_head[cls];
            c.m_head[cls] = n;
            ++c.m_count[cls];
            return;
        }
    }
#endif
    frame_free_slow(p, size);
}

} // namespace coio::detail
