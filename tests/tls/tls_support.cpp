// tests/tls/tls_support.cpp - certificates, child processes, helpers
// (tls_support.hpp).
#include "tls/tls_support.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

extern char** environ;

namespace coio::test {

namespace {

void run(const std::string& dir, const std::string& cmd) {
    const std::string full = "cd '" + dir + "' && " + cmd + " >>openssl.log 2>&1";
    if (std::system(full.c_str()) != 0) {
        throw std::runtime_error("test certificates: '" + cmd + "' failed; see " + dir +
                                 "/openssl.log");
    }
}

void write_text(const std::string& path, const std::string& text) {
    std::ofstream f(path);
    f << text;
    if (!f) {
        throw std::runtime_error("cannot write " + path);
    }
}

const char* const newkey = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";

// A key and a CSR for `subject`, then a certificate signed by the CA with
// the extensions in `ext`.
void signed_leaf(const std::string& dir, const std::string& name, const std::string& subject,
                 const std::string& ext, int serial) {
    write_text(dir + "/" + name + ".ext", ext);
    run(dir, std::string("openssl req ") + newkey + " -keyout " + name + ".key -out " + name +
                 ".csr -subj '" + subject + "'");
    run(dir, "openssl x509 -req -in " + name + ".csr -CA ca.pem -CAkey ca.key -set_serial " +
                 std::to_string(serial) + " -days 3 -extfile " + name + ".ext -out " + name +
                 ".pem");
}

// Removes the directory when the test process exits.
struct temp_dir {
    std::string path;
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path, ec);
    }
};

test_certs make_certs() {
    static temp_dir tmp;
    std::string templ = (std::filesystem::temp_directory_path() / "coio-tls-XXXXXX").string();
    if (::mkdtemp(templ.data()) == nullptr) {
        throw std::runtime_error("mkdtemp failed");
    }
    tmp.path = templ;
    const std::string& d = tmp.path;
    run(d, std::string("openssl req -x509 ") + newkey +
               " -keyout ca.key -out ca.pem -days 3 -subj '/CN=coio test CA'");
    const std::string server_ext =
        "subjectAltName=DNS:localhost,IP:127.0.0.1,IP:::1\nextendedKeyUsage=serverAuth\n";
    signed_leaf(d, "server", "/CN=localhost", server_ext, 2);
    signed_leaf(d, "wrong", "/CN=wrong.example",
                "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n", 3);
    signed_leaf(d, "client", "/CN=coio test client", "extendedKeyUsage=clientAuth\n", 4);
    // Self-signed: nothing the clients trust vouches for it.
    write_text(d + "/self.ext", server_ext);
    run(d, std::string("openssl req -x509 ") + newkey +
               " -keyout self.key -out self.pem -days 3 -subj /CN=localhost -addext "
               "subjectAltName=DNS:localhost,IP:127.0.0.1");
    // Expired: `openssl x509 -days` cannot go back in time, `openssl ca` can.
    write_text(d + "/ca.cnf", "[ca]\ndefault_ca = d\n[d]\ndir = .\ndatabase = index.txt\n"
                              "new_certs_dir = .\nserial = serial\ndefault_md = sha256\n"
                              "policy = p\nunique_subject = no\ncopy_extensions = copy\n"
                              "[p]\ncommonName = supplied\n");
    write_text(d + "/index.txt", "");
    write_text(d + "/serial", "05\n");
    run(d, std::string("openssl req ") + newkey +
               " -keyout expired.key -out expired.csr -subj /CN=localhost -addext "
               "subjectAltName=DNS:localhost,IP:127.0.0.1");
    run(d, "openssl ca -batch -config ca.cnf -cert ca.pem -keyfile ca.key -in expired.csr -out "
           "expired.pem -startdate 20200101000000Z -enddate 20200102000000Z -notext");
    test_certs c;
    c.dir = d;
    c.ca = d + "/ca.pem";
    c.server_cert = d + "/server.pem";
    c.server_key = d + "/server.key";
    c.expired_cert = d + "/expired.pem";
    c.expired_key = d + "/expired.key";
    c.wrong_host_cert = d + "/wrong.pem";
    c.wrong_host_key = d + "/wrong.key";
    c.self_signed_cert = d + "/self.pem";
    c.self_signed_key = d + "/self.key";
    c.client_cert = d + "/client.pem";
    c.client_key = d + "/client.key";
    return c;
}

} // namespace

const test_certs& certs() {
    static const test_certs c = make_certs();
    return c;
}

std::string read_text(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        throw std::runtime_error("cannot read " + path);
    }
    std::ostringstream s;
    s << f.rdbuf();
    return std::move(s).str();
}

coio::tls_context server_context(coio::tls_context_options extra) {
    if (extra.cert_file.empty() && extra.cert_pem.empty()) {
        extra.cert_file = certs().server_cert;
        extra.key_file = certs().server_key;
    }
    return coio::tls_context::server(std::move(extra));
}

coio::tls_context client_context(coio::tls_context_options extra) {
    if (extra.ca_file.empty() && extra.ca_pem.empty() && extra.ca_dir.empty()) {
        extra.ca_file = certs().ca;
    }
    return coio::tls_context::client(std::move(extra));
}

coio::tls_context server_context() {
    return server_context(coio::tls_context_options{});
}

coio::tls_context client_context() {
    return client_context(coio::tls_context_options{});
}

// --- child processes ------------------------------------------------------------------------

child_process::child_process(std::vector<std::string> argv, stderr_to err) {
    static int counter = 0;
    m_err_path = certs().dir + "/child-" + std::to_string(::getpid()) + "-" +
                 std::to_string(++counter) + ".err";
    int in_fds[2];
    int out_fds[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_fds) != 0) {
        throw std::runtime_error("socketpair failed");
    }
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, out_fds) != 0) {
        ::close(in_fds[0]);
        ::close(in_fds[1]);
        throw std::runtime_error("socketpair failed");
    }
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, in_fds[1], 0);
    posix_spawn_file_actions_adddup2(&fa, out_fds[1], 1);
    if (err == stderr_to::out) {
        posix_spawn_file_actions_adddup2(&fa, out_fds[1], 2);
    } else {
        posix_spawn_file_actions_addopen(&fa, 2, m_err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC,
                                         0600);
    }
    std::vector<char*> args;
    for (std::string& a : argv) {
        args.push_back(a.data());
    }
    args.push_back(nullptr);
    const int rc = ::posix_spawnp(&m_pid, args[0], &fa, nullptr, args.data(), environ);
    posix_spawn_file_actions_destroy(&fa);
    ::close(in_fds[1]);
    ::close(out_fds[1]);
    if (rc != 0) {
        ::close(in_fds[0]);
        ::close(out_fds[0]);
        m_pid = -1;
        throw std::runtime_error("cannot start " + argv[0]);
    }
    ::fcntl(in_fds[0], F_SETFL, O_NONBLOCK);
    ::fcntl(out_fds[0], F_SETFL, O_NONBLOCK);
    in = coio::make_streams(coio::socket(in_fds[0])).writer;
    out = coio::make_streams(coio::socket(out_fds[0])).reader;
}

child_process::~child_process() {
    if (m_pid > 0) {
        ::kill(m_pid, SIGKILL);
        (void)wait();
    }
    in.close();
}

void child_process::terminate() noexcept {
    if (m_pid > 0) {
        ::kill(m_pid, SIGTERM);
    }
}

int child_process::wait() noexcept {
    if (m_pid <= 0) {
        return -1;
    }
    int status = 0;
    while (::waitpid(m_pid, &status, 0) < 0 && errno == EINTR) {
    }
    m_pid = -1;
    if (WIFEXITED(status)) {
        return WEXITSTATUS(status);
    }
    return WIFSIGNALED(status) ? 128 + WTERMSIG(status) : -1;
}

std::string child_process::stderr_text() const {
    try {
        return read_text(m_err_path);
    } catch (const std::exception&) {
        return {};
    }
}

// --- helpers ------------------------------------------------------------------------------

coio::task<std::string> read_until_line(coio::stream_reader* r, std::string needle) {
    std::string seen;
    for (;;) {
        std::string line = co_await r->readline();
        if (line.empty()) {
            throw std::runtime_error("EOF before a line with '" + needle + "'; got:\n" + seen);
        }
        if (line.find(needle) != std::string::npos) {
            co_return line;
        }
        seen += line;
    }
}

std::uint16_t accept_port(const std::string& line) {
    const std::size_t colon = line.rfind(':');
    if (colon == std::string::npos) {
        throw std::runtime_error("no port in '" + line + "'");
    }
    return static_cast<std::uint16_t>(std::stoul(line.substr(colon + 1)));
}

coio::task<> echo_lines(coio::stream_reader r, coio::stream_writer w) {
    for (;;) {
        std::string line = co_await r.readline();
        if (line.empty()) {
            break;
        }
        w.write(line);
        co_await w.drain();
    }
    w.close();
    co_await w.wait_closed();
}

void reports::install() {
    coio::event_loop::running().set_exception_handler(
        [this](const coio::exception_context& c) { messages.emplace_back(c.message); });
}

} // namespace coio::test
