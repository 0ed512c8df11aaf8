// lib/sys/cpu.hpp - the CPUs this thread may run on, and pinning to them
// (run_loops). Linux: sched_getaffinity / sched_setaffinity. Elsewhere the
// CPUs are 0 .. hardware_concurrency - 1 and pinning is not supported.
#pragma once

#include <vector>

namespace coio::sys {

// The CPU numbers the calling thread may run on, ascending; never empty (at
// least {0} if the system will not say).
std::vector<int> allowed_cpus();

// allowed_cpus() of the thread that initialised the library (before main),
// i.e. the process's CPUs before any run_loops pinning.
const std::vector<int>& startup_cpus();

// Restricts the calling thread to `cpus`: 0 or -errno (-ENOTSUP where the
// system cannot pin).
int set_thread_cpus(const std::vector<int>& cpus) noexcept;

} // namespace coio::sys
