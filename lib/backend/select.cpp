// lib/backend/select.cpp - which backend runs (STYLE P1).
//
// The build decides which backends exist; this file decides at startup which
// one runs: COIO_BACKEND if set, else io_uring when a probe ring can be made
// (seccomp filters in container profiles, kernel.io_uring_disabled and old
// kernels make it fail with EPERM or ENOSYS), else epoll / kqueue.
#include "backend/backend.hpp"

#include <stdexcept>
#include <string>

namespace coio::detail {

std::vector<std::string> built_backends() {
    std::vector<std::string> out;
#if defined(COIO_HAVE_URING)
    out.emplace_back("io_uring");
#endif
#if defined(COIO_HAVE_EPOLL)
    out.emplace_back("epoll");
#endif
#if defined(COIO_HAVE_KQUEUE)
    out.emplace_back("kqueue");
#endif
    return out;
}

std::vector<std::string> usable_backends() {
    std::vector<std::string> out;
    for (std::string& b : built_backends()) {
        if (b != "io_uring" || uring_probe().empty()) {
            out.push_back(std::move(b));
        }
    }
    return out;
}

#if !defined(COIO_HAVE_URING)
std::string uring_probe() {
    return "io_uring: not built into this coio (liburing missing)";
}
std::unique_ptr<backend> make_uring_backend(completion_sink&) {
    throw std::runtime_error(uring_probe());
}
#endif
#if !defined(COIO_HAVE_EPOLL)
std::unique_ptr<backend> make_epoll_backend(completion_sink&) {
    throw std::runtime_error("epoll: not available on this system");
}
#endif
#if !defined(COIO_HAVE_KQUEUE)
std::unique_ptr<backend> make_kqueue_backend(completion_sink&) {
    throw std::runtime_error("kqueue: not available on this system");
}
#endif

std::unique_ptr<backend> make_backend(std::string_view requested, completion_sink& sink) {
    if (requested.empty() || requested == "auto") {
#if defined(COIO_HAVE_URING)
        if (uring_probe().empty()) {
            return make_uring_backend(sink);
        }
#endif
#if defined(COIO_HAVE_EPOLL)
        return make_epoll_backend(sink);
#elif defined(COIO_HAVE_KQUEUE)
        return make_kqueue_backend(sink);
#else
        throw std::runtime_error("coio: no I/O backend was built");
#endif
    }
    if (requested == "epoll") {
        return make_epoll_backend(sink);
    }
    if (requested == "io_uring" || requested == "uring") {
        std::string why = uring_probe();
        if (!why.empty()) {
            throw std::runtime_error("COIO_BACKEND=io_uring is not available: " + why);
        }
        return make_uring_backend(sink);
    }
    if (requested == "kqueue") {
        return make_kqueue_backend(sink);
    }
    throw std::runtime_error("COIO_BACKEND=" + std::string(requested) +
                             ": unknown backend (expected epoll, io_uring, kqueue or auto)");
}

} // namespace coio::detail
