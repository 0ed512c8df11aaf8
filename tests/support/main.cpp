// tests/support/main.cpp - Catch2 main that skips (exit 77) when the backend
// named by COIO_BACKEND cannot run here, so meson reports SKIP, never PASS.
#define CATCH_CONFIG_RUNNER
#include <catch2/catch.hpp>

#include <coio/event_loop.hpp>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

int main(int argc, char** argv) {
    if (const char* want = std::getenv("COIO_BACKEND");
        want != nullptr && *want != '\0' && std::string(want) != "auto") {
        auto usable = coio::available_backends();
        std::string name = std::string(want) == "uring" ? "io_uring" : want;
        if (std::find(usable.begin(), usable.end(), name) == usable.end()) {
            std::fprintf(stderr, "SKIP: backend %s is not available here\n", want);
            return 77;
        }
    }
    return Catch::Session().run(argc, argv);
}
