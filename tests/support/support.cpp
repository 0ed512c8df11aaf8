// tests/support/support.cpp
#include "support/support.hpp"

#include <dirent.h>

namespace coio::test {

std::size_t open_fd_count() {
    std::size_t n = 0;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.') {
                ++n;
            }
        }
        ::closedir(d);
        return n - 1; // the DIR's own fd
    }
    return 0;
}

} // namespace coio::test
