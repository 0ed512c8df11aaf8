// lib/sys/cpu.cpp - see cpu.hpp.
#include "sys/cpu.hpp"

#include <cerrno>
#include <thread>

#ifdef __linux__
#include <sched.h>
#endif

namespace coio::sys {

std::vector<int> allowed_cpus() {
    std::vector<int> cpus;
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    if (::sched_getaffinity(0, sizeof set, &set) == 0) {
        for (int c = 0; c < CPU_SETSIZE; ++c) {
            if (CPU_ISSET(c, &set)) {
                cpus.push_back(c);
            }
        }
    }
#endif
    if (cpus.empty()) {
        const unsigned n = std::thread::hardware_concurrency();
        for (unsigned c = 0; c < (n == 0 ? 1U : n); ++c) {
            cpus.push_back(static_cast<int>(c));
        }
    }
    return cpus;
}

namespace {
const std::vector<int> g_startup_cpus = allowed_cpus();
} // namespace

const std::vector<int>& startup_cpus() {
    return g_startup_cpus;
}

int set_thread_cpus(const std::vector<int>& cpus) noexcept {
#ifdef __linux__
    cpu_set_t set;
    CPU_ZERO(&set);
    for (int c : cpus) {
        if (c >= 0 && c < CPU_SETSIZE) {
            CPU_SET(c, &set);
        }
    }
    return ::sched_setaffinity(0, sizeof set, &set) == 0 ? 0 : -errno;
#else
    (void)cpus;
    return -ENOTSUP;
#endif
}

} // namespace coio::sys
