// tests/netns/netns_support.hpp - network faults for tests that run in their
// own network namespace (in_netns.sh; RELIABILITY 3.6).
//
// Every helper first checks that the process really is in a namespace of its
// own (COIO_IN_NETNS=1 and a network namespace other than init's), so a test
// started by hand outside in_netns.sh fails instead of adding rules to the
// machine's firewall. Rules go into the table `inet coio_test` that
// in_netns.sh created; they vanish with the namespace.
#pragma once

#include <catch2/catch.hpp>

#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <string>
#include <vector>

namespace coio::test::netns {

// True in a private network namespace made by in_netns.sh.
inline bool inside() {
    const char* flag = std::getenv("COIO_IN_NETNS");
    struct stat self {};
    struct stat init {};
    if (flag == nullptr || std::string(flag) != "1" || ::stat("/proc/self/ns/net", &self) != 0) {
        return false;
    }
    // Without access to init's namespace (not root), trust the flag.
    return ::stat("/proc/1/ns/net", &init) != 0 || self.st_ino != init.st_ino;
}

inline void require_inside() {
    INFO("network fault tests run only in their own namespace: tests/netns/in_netns.sh TEST");
    REQUIRE(inside());
}

// Runs `nft ARGS...` (no shell); REQUIREs success.
inline void nft(const std::vector<std::string>& args) {
    require_inside();
    std::vector<char*> argv;
    std::string nft_name = "nft";
    argv.push_back(nft_name.data());
    std::vector<std::string> copy = args;
    for (std::string& a : copy) {
        argv.push_back(a.data());
    }
    argv.push_back(nullptr);
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        ::execvp("nft", argv.data());
        ::_exit(127);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    std::string cmd = "nft";
    for (const std::string& a : args) {
        cmd += " " + a;
    }
    INFO(cmd);
    REQUIRE((WIFEXITED(status) && WEXITSTATUS(status) == 0));
}

// A filter chain on `hook` (input or output) in table inet coio_test,
// created once.
inline void ensure_chain(const std::string& hook) {
    nft({"add", "chain", "inet", "coio_test", hook,
         "{ type filter hook " + hook + " priority 0; policy accept; }"});
}

// SYNs to 127.0.0.1:port are dropped: a connect there stays in SYN_SENT
// (the kernel retransmits for about two minutes) - a peer that never answers.
inline void drop_syn_to(std::uint16_t port) {
    ensure_chain("input");
    nft({"add", "rule", "inet", "coio_test", "input", "tcp", "dport", std::to_string(port), "tcp",
         "flags", "&", "(syn|ack)", "==", "syn", "drop"});
}

// Every packet to or from `port` is dropped, both ways: an established
// connection goes silent (a peer that vanished, a blackholed source; for the
// idle/keepalive and ACK-timeout tests). Existing and new connections alike.
inline void blackhole(std::uint16_t port) {
    ensure_chain("input");
    nft({"add", "rule", "inet", "coio_test", "input", "tcp", "dport", std::to_string(port),
         "drop"});
    nft({"add", "rule", "inet", "coio_test", "input", "tcp", "sport", std::to_string(port),
         "drop"});
}

// Drops the rules again (the chains stay).
inline void flush() {
    nft({"flush", "table", "inet", "coio_test"});
}

} // namespace coio::test::netns
