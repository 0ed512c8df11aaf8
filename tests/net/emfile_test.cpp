// tests/net/emfile_test.cpp - a server that runs out of fds (EMFILE on
// accept) pauses, resumes when connections close, and does not spin.
//
// The server runs in a forked child whose RLIMIT_NOFILE leaves room for only
// `spare_fds` connections; the parent drives it with plain blocking sockets,
// bounding every wait with poll(), and the child reports its server_stats over
// a pipe before exiting. alarm() ends a child that hangs.
#include "net/net_support.hpp"

#include <dirent.h>
#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <netinet/in.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <set>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

namespace {

constexpr int clients = 20;
constexpr int spare_fds = 4; // connections the child can hold at once

// Sent by the child as it ends (fixed size, so one read gets it).
struct child_report {
    int ok = 0; // 1 if the child's loop finished normally
    std::uint64_t accepted = 0;
    std::uint64_t accept_errors = 0;
    std::uint64_t accept_pauses = 0;
    std::uint64_t handler_reports = 0; // exception-handler calls
    char first_report[240] = {};
    char failure[240] = {};
};

struct child_state {
    child_report* report;
    coio::server srv;
    int finished = 0;
};

// Echo, and close the server once every client has been served.
struct counting_echo {
    child_state* st;
    coio::task<> operator()(coio::socket s) const {
        co_await coio::test::echo_handler(std::move(s));
        if (++st->finished == clients) {
            st->srv.close();
        }
    }
};

// The RLIMIT_NOFILE value below which exactly `spare` fd numbers are free.
rlim_t limit_leaving(int spare) {
    std::set<int> open;
    if (DIR* d = ::opendir("/proc/self/fd")) {
        const int self = ::dirfd(d);
        while (const dirent* e = ::readdir(d)) {
            if (e->d_name[0] != '.' && std::atoi(e->d_name) != self) {
                open.insert(std::atoi(e->d_name));
            }
        }
        ::closedir(d);
    }
    int free = 0;
    int fd = 0;
    for (; free < spare; ++fd) {
        if (open.count(fd) == 0) {
            ++free;
        }
    }
    return static_cast<rlim_t>(fd);
}

void copy_text(char (&to)[240], const std::string& from) {
    std::strncpy(to, from.c_str(), sizeof to - 1);
}

coio::task<> child_main(child_state* st, int to_parent) {
    coio::event_loop::running().set_exception_handler([st](const coio::exception_context& c) {
        if (st->report->handler_reports++ == 0) {
            copy_text(st->report->first_report, std::string(c.message));
        }
    });
    st->srv = co_await coio::start_server(counting_echo{st}, "127.0.0.1", 0);
    rlimit lim{};
    ::getrlimit(RLIMIT_NOFILE, &lim);
    lim.rlim_cur = limit_leaving(spare_fds);
    if (::setrlimit(RLIMIT_NOFILE, &lim) != 0) {
        throw std::runtime_error("setrlimit failed");
    }
    const std::uint16_t port = st->srv.port();
    if (::write(to_parent, &port, sizeof port) != sizeof port) {
        throw std::runtime_error("cannot send the port");
    }
    co_await st->srv.serve_forever();
    co_await st->srv.wait_closed();
    coio::server_stats s = st->srv.stats();
    st->report->accepted = s.accepted;
    st->report->accept_errors = s.accept_errors;
    st->report->accept_pauses = s.accept_pauses;
}

[[noreturn]] void run_child(int to_parent) {
    ::alarm(30); // safety net: a hung child dies and the parent sees the signal
    child_report report;
    try {
        coio::event_loop loop;
        child_state st{&report, {}, 0}; // destroyed before the loop
        loop.run_until_complete(child_main(&st, to_parent));
        report.ok = 1;
    } catch (const std::exception& e) {
        copy_text(report.failure, e.what());
    }
    [[maybe_unused]] ssize_t n = ::write(to_parent, &report, sizeof report);
    ::_exit(report.ok == 1 ? 0 : 3);
}

// Kills and reaps the child if the test leaves early.
class child_process {
public:
    explicit child_process(pid_t pid) noexcept : m_pid(pid) {}
    child_process(const child_process&) = delete;
    child_process& operator=(const child_process&) = delete;
    ~child_process() {
        if (m_pid > 0) {
            ::kill(m_pid, SIGKILL);
            int st = 0;
            ::waitpid(m_pid, &st, 0);
        }
    }
    // Wait for the child to exit (it must already be ending); its wait status.
    int reap() {
        int st = 0;
        pid_t r = 0;
        do {
            r = ::waitpid(m_pid, &st, 0);
        } while (r < 0 && errno == EINTR);
        m_pid = -1;
        return st;
    }

private:
    pid_t m_pid;
};

using steady = std::chrono::steady_clock;

int ms_left(steady::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - steady::now());
    return static_cast<int>(std::max<std::int64_t>(0, left.count()));
}

// Read exactly `n` bytes from a blocking fd, waiting at most until deadline.
bool read_full(int fd, void* buf, std::size_t n, steady::time_point deadline) {
    auto* p = static_cast<char*>(buf);
    std::size_t done = 0;
    while (done < n) {
        pollfd pf{fd, POLLIN, 0};
        if (::poll(&pf, 1, ms_left(deadline)) != 1) {
            return false;
        }
        ssize_t r = ::read(fd, p + done, n - done);
        if (r <= 0) {
            return false;
        }
        done += static_cast<std::size_t>(r);
    }
    return true;
}

int connect_blocking(std::uint16_t port) {
    int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    REQUIRE(fd >= 0);
    coio::address to = coio::address::loopback_v4(port);
    REQUIRE(::connect(fd, static_cast<const sockaddr*>(to.data()), to.size()) == 0);
    return fd;
}

std::string line_for(int i) {
    return "client " + std::to_string(i) + " says hello\n";
}

struct client_conn {
    int fd = -1;
    int id = 0;
    std::string got;
    bool echoed = false;
};

// Wait (until deadline) for any of the un-echoed connections to deliver its
// whole line back; returns how many completed. With close_each, a connection
// is closed as soon as its echo is complete.
int collect_echoes(std::vector<client_conn>& conns, int want, bool close_each,
                   steady::time_point deadline) {
    int completed = 0;
    while (completed < want) {
        std::vector<pollfd> pfs;
        std::vector<client_conn*> who;
        for (client_conn& c : conns) {
            if (!c.echoed && c.fd >= 0) {
                pfs.push_back({c.fd, POLLIN, 0});
                who.push_back(&c);
            }
        }
        if (pfs.empty()) {
            break;
        }
        int n = ::poll(pfs.data(), pfs.size(), ms_left(deadline));
        if (n <= 0) {
            break; // timed out
        }
        for (std::size_t i = 0; i < pfs.size(); ++i) {
            if ((pfs[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) {
                continue;
            }
            client_conn& c = *who[i];
            char buf[256];
            ssize_t r = ::recv(c.fd, buf, sizeof buf, 0);
            REQUIRE(r > 0); // the server must not drop a connection it could not accept
            c.got.append(buf, static_cast<std::size_t>(r));
            if (c.got.size() >= line_for(c.id).size()) {
                CHECK(c.got == line_for(c.id));
                c.echoed = true;
                ++completed;
                if (close_each) {
                    ::close(std::exchange(c.fd, -1));
                }
            }
        }
    }
    return completed;
}

TEST_CASE("a server out of fds pauses accepting, resumes as connections close, and does not spin",
          "[net]") {
    COIO_SKIP_UNDER_VALGRIND(); // the child lowers RLIMIT_NOFILE
    const std::size_t fds_before = coio::test::open_fd_count();
    std::array<int, 2> pipe_fds{};
    REQUIRE(::pipe2(pipe_fds.data(), O_CLOEXEC) == 0);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::close(pipe_fds[0]);
        run_child(pipe_fds[1]);
    }
    ::close(pipe_fds[1]);
    const int from_child = pipe_fds[0];
    child_process child(pid);
    const steady::time_point deadline = steady::now() + std::chrono::seconds(20);

    std::uint16_t port = 0;
    REQUIRE(read_full(from_child, &port, sizeof port, deadline));
    REQUIRE(port != 0);

    // More connections than the child has fds for: the kernel completes every
    // handshake (the backlog is 1024), the child accepts only spare_fds.
    std::vector<client_conn> conns(clients);
    for (int i = 0; i < clients; ++i) {
        conns[static_cast<std::size_t>(i)].id = i;
        conns[static_cast<std::size_t>(i)].fd = connect_blocking(port);
        const std::string line = line_for(i);
        REQUIRE(::send(conns[static_cast<std::size_t>(i)].fd, line.data(), line.size(),
                       MSG_NOSIGNAL) == static_cast<ssize_t>(line.size()));
    }

    // The first spare_fds get echoed; the child then has no fd left, so no
    // other connection can be served while those stay open.
    CHECK(collect_echoes(conns, spare_fds, false, deadline) == spare_fds);
    int early = 0;
    for (const client_conn& c : conns) {
        early += c.echoed ? 1 : 0;
    }
    CHECK(early == spare_fds);
    CHECK(collect_echoes(conns, 1, false, steady::now() + std::chrono::milliseconds(20)) == 0);

    // Free the child's fds: every remaining client must be served now, each
    // closed as soon as its echo is in, which frees the fd for the next one.
    for (client_conn& c : conns) {
        if (c.echoed) {
            ::close(std::exchange(c.fd, -1));
        }
    }
    CHECK(collect_echoes(conns, clients - spare_fds, true, deadline) == clients - spare_fds);
    for (client_conn& c : conns) {
        CHECK(c.echoed);
        if (c.fd >= 0) {
            ::close(c.fd);
        }
    }

    child_report rep;
    const bool got_report = read_full(from_child, &rep, sizeof rep, deadline);
    ::close(from_child);
    const int status = child.reap();
    REQUIRE(got_report);
    INFO("child failure: " << rep.failure);
    INFO("first report: " << rep.first_report);
    CHECK(WIFEXITED(status));
    CHECK(WEXITSTATUS(status) == 0);
    CHECK(rep.ok == 1);
    CHECK(rep.accepted == static_cast<std::uint64_t>(clients));
    CHECK(rep.accept_pauses >= 1);
    CHECK(rep.accept_errors >= rep.accept_pauses);
    CHECK(rep.accept_errors < 200); // paused with a backoff, woken by closes: no spinning
    CHECK(rep.handler_reports >= 1);
    CHECK(rep.handler_reports <= rep.accept_pauses);
    CHECK_THAT(std::string(rep.first_report),
               Catch::Contains("accept on 127.0.0.1:" + std::to_string(port)) &&
                   Catch::Contains("Too many open files"));
    CHECK(coio::test::open_fd_count() == fds_before);
}

} // namespace
