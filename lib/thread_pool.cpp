// lib/thread_pool.cpp - the process-wide pool behind to_thread.
//
// Threads start on first use; the pool is torn down at exit (workers finish
// the job in hand, queued jobs are dropped). Every loop waits for its own jobs
// to come back before run() returns, so a dropped job never belongs to a loop
// that is still running. Workers may run on every CPU the process could use
// at startup, whichever thread starts them (a loop pinned by run_loops would
// otherwise pass its single CPU on to every worker).
#include "sys/cpu.hpp"

#include <coio/to_thread.hpp>

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <vector>

namespace coio {
namespace detail {
namespace {

class thread_pool {
public:
    explicit thread_pool(std::size_t n) {
        m_threads.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            m_threads.emplace_back([this] {
                (void)sys::set_thread_cpus(sys::startup_cpus()); // best effort
                work();
            });
        }
    }
    thread_pool(const thread_pool&) = delete;
    thread_pool& operator=(const thread_pool&) = delete;
    ~thread_pool() {
        {
            std::lock_guard lock(m_mutex);
            m_stopping = true;
        }
        m_ready.notify_all();
        for (std::thread& t : m_threads) {
            t.join();
        }
    }

    void submit(std::function<void()> job) {
        {
            std::lock_guard lock(m_mutex);
            m_jobs.push_back(std::move(job));
        }
        m_ready.notify_one();
    }

    [[nodiscard]] std::size_t size() const noexcept { return m_threads.size(); }

private:
    void work() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock lock(m_mutex);
                m_ready.wait(lock, [this] { return m_stopping || !m_jobs.empty(); });
                if (m_stopping) {
                    return;
                }
                job = std::move(m_jobs.front());
                m_jobs.pop_front();
            }
            job();
        }
    }

    std::mutex m_mutex;
    std::condition_variable m_ready;
    std::deque<std::function<void()>> m_jobs;
    bool m_stopping = false;
    std::vector<std::thread> m_threads;
};

thread_pool& pool() {
    static thread_pool p(std::max(2U, std::thread::hardware_concurrency()));
    return p;
}

} // namespace

void submit_to_pool(std::function<void()> job) {
    pool().submit(std::move(job));
}

} // namespace detail

std::size_t thread_pool_size() noexcept {
    return detail::pool().size();
}

} // namespace coio
