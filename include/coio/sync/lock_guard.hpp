// coio/sync/lock_guard.hpp - RAII ownership of a lock, a semaphore permit or
// a condition's lock: what `co_await x.scoped()` returns (asyncio's
// `async with x:`).
#pragma once

#include <utility>

namespace coio {

// Holds one acquisition of `P` and calls P::release() when destroyed (or on
// unlock()). Move-only. The primitive must outlive the guard.
template <class P>
class [[nodiscard]] lock_guard {
public:
    lock_guard() noexcept = default;
    // Adopt an acquisition the caller already made.
    explicit lock_guard(P& p) noexcept : m_p(&p) {}
    lock_guard(lock_guard&& o) noexcept : m_p(std::exchange(o.m_p, nullptr)) {}
    lock_guard& operator=(lock_guard&& o) noexcept {
        if (this != &o) {
            unlock();
            m_p = std::exchange(o.m_p, nullptr);
        }
        return *this;
    }
    lock_guard(const lock_guard&) = delete;
    lock_guard& operator=(const lock_guard&) = delete;
    ~lock_guard() { unlock(); }

    // Release now (no-op if already released).
    void unlock() noexcept {
        if (m_p != nullptr) {
            std::exchange(m_p, nullptr)->release();
        }
    }
    [[nodiscard]] bool owns_lock() const noexcept { return m_p != nullptr; }
    explicit operator bool() const noexcept { return owns_lock(); }

private:
    P* m_p = nullptr;
};

} // namespace coio
