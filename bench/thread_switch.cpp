// thread_switch — the thread baseline for yield_switch: two OS threads hand a turn back
// and forth, once through a std::condition_variable (mutex + condvar, what most thread
// code uses) and once through a bare futex (the cheapest blocking hand-off Linux has).
// Each hand-off blocks one thread and wakes the other, so it is one kernel thread switch.
//
//   same_core:  both threads pinned to the same CPU: every hand-off is a context switch
//               on that core (the seeds' "a thread switch costs microseconds").
//   cross_core: the threads on two different CPUs: a wake-up across cores (IPI, the
//               sleeping core leaving idle).
//
// Run:  ./thread_switch [--benchmark_format=json]   (needs 2 CPUs for cross_core)
// Items: one item = one hand-off = one switch, per wall second (UseRealTime). The counter
// process_cpu_ns_per_switch is the CPU time both threads spent per switch (getrusage):
// on a machine shared with other work, wall time also counts the waits for a core, CPU
// time only the switch's own cost. No coio here on purpose.
#include <benchmark/benchmark.h>

#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>

namespace {

constexpr int k_main_cpu = 0;

// Pins the calling thread to `cpu`; returns false if that CPU is not available.
bool pin(int cpu) {
    cpu_set_t set;
    CPU_ZERO(&set);
    CPU_SET(static_cast<unsigned>(cpu), &set);
    return pthread_setaffinity_np(pthread_self(), sizeof set, &set) == 0;
}

// CPU time of the whole process (all threads), in ns.
double process_cpu_ns() {
    rusage u{};
    getrusage(RUSAGE_SELF, &u);
    auto ns = [](const timeval& t) {
        return static_cast<double>(t.tv_sec) * 1e9 + static_cast<double>(t.tv_usec) * 1e3;
    };
    return ns(u.ru_utime) + ns(u.ru_stime);
}

void report(benchmark::State& state, double cpu_ns, bool same_core) {
    const auto switches = static_cast<double>(state.iterations()) * 2;
    state.SetItemsProcessed(state.iterations() * 2);
    state.counters["process_cpu_ns_per_switch"] = cpu_ns / switches;
    state.SetLabel(same_core ? "same_core" : "cross_core");
}

// Restores the benchmark thread's affinity when a benchmark ends.
class affinity_guard {
public:
    affinity_guard() { pthread_getaffinity_np(pthread_self(), sizeof m_saved, &m_saved); }
    ~affinity_guard() { pthread_setaffinity_np(pthread_self(), sizeof m_saved, &m_saved); }
    affinity_guard(const affinity_guard&) = delete;
    affinity_guard& operator=(const affinity_guard&) = delete;

private:
    cpu_set_t m_saved{};
};

// --- condition variable --------------------------------------------------------------------

struct cv_turn {
    std::mutex m;
    std::condition_variable cv;
    int turn = 0; // 0: main's turn, 1: partner's turn, 2: stop
};

void cv_partner(cv_turn* s, int cpu) {
    pin(cpu);
    std::unique_lock lock(s->m);
    for (;;) {
        s->cv.wait(lock, [s] { return s->turn != 0; });
        if (s->turn == 2) {
            return;
        }
        s->turn = 0;
        s->cv.notify_one();
    }
}

void bm_condvar(benchmark::State& state) {
    const int other = state.range(0) == 0 ? k_main_cpu : k_main_cpu + 1;
    affinity_guard guard;
    if (!pin(k_main_cpu) || other >= static_cast<int>(std::thread::hardware_concurrency())) {
        state.SkipWithError("not enough CPUs");
        return;
    }
    cv_turn s;
    std::thread t(cv_partner, &s, other);
    const double cpu0 = process_cpu_ns();
    for (auto _ : state) {
        std::unique_lock lock(s.m);
        s.turn = 1;
        s.cv.notify_one();
        s.cv.wait(lock, [&s] { return s.turn == 0; });
    }
    const double cpu = process_cpu_ns() - cpu0;
    {
        std::lock_guard lock(s.m);
        s.turn = 2;
    }
    s.cv.notify_one();
    t.join();
    report(state, cpu, state.range(0) == 0);
}
BENCHMARK(bm_condvar)->Arg(0)->Arg(1)->UseRealTime();

// --- futex ---------------------------------------------------------------------------------

long futex(std::atomic<std::uint32_t>* addr, int op, std::uint32_t val) {
    return syscall(SYS_futex, reinterpret_cast<std::uint32_t*>(addr), op, val, nullptr, nullptr, 0);
}

// Waits until *word != `mine`: spins never, sleeps in the kernel at once, so each hand-off
// is a real switch (a spin would measure cache-line ping-pong instead).
void wait_while(std::atomic<std::uint32_t>& word, std::uint32_t mine) {
    while (word.load(std::memory_order_acquire) == mine) {
        futex(&word, FUTEX_WAIT_PRIVATE, mine);
    }
}

void set_and_wake(std::atomic<std::uint32_t>& word, std::uint32_t v) {
    word.store(v, std::memory_order_release);
    futex(&word, FUTEX_WAKE_PRIVATE, 1);
}

void futex_partner(std::atomic<std::uint32_t>* word, int cpu) {
    pin(cpu);
    for (;;) {
        wait_while(*word, 0); // 0 = main's turn
        if (word->load(std::memory_order_acquire) == 2) {
            return;
        }
        set_and_wake(*word, 0);
    }
}

void bm_futex(benchmark::State& state) {
    const int other = state.range(0) == 0 ? k_main_cpu : k_main_cpu + 1;
    affinity_guard guard;
    if (!pin(k_main_cpu) || other >= static_cast<int>(std::thread::hardware_concurrency())) {
        state.SkipWithError("not enough CPUs");
        return;
    }
    std::atomic<std::uint32_t> word{0};
    std::thread t(futex_partner, &word, other);
    const double cpu0 = process_cpu_ns();
    for (auto _ : state) {
        set_and_wake(word, 1);
        wait_while(word, 1);
    }
    const double cpu = process_cpu_ns() - cpu0;
    set_and_wake(word, 2);
    t.join();
    report(state, cpu, state.range(0) == 0);
}
BENCHMARK(bm_futex)->Arg(0)->Arg(1)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
