// lib/tls/openssl/context.cpp - tls_context: an SSL_CTX set up from
// tls_context_options, and the client's session cache.
#include "tls/openssl/context.hpp"

#include "tls/openssl/engine.hpp"
#include "tls/openssl/errors.hpp"

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <stdexcept>

namespace coio {
namespace detail {

tls_session_cache::~tls_session_cache() {
    for (auto& [key, e] : m_map) {
        SSL_SESSION_free(e.session);
    }
}

void tls_session_cache::put(const std::string& key, SSL_SESSION* s) noexcept {
    std::lock_guard<std::mutex> lock(m_mutex);
    try {
        if (m_map.size() >= max_entries && m_map.find(key) == m_map.end()) {
            auto oldest = m_map.begin();
            for (auto it = m_map.begin(); it != m_map.end(); ++it) {
                if (it->second.stamp < oldest->second.stamp) {
                    oldest = it;
                }
            }
            SSL_SESSION_free(oldest->second.session);
            m_map.erase(oldest);
        }
        entry& e = m_map[key];
        SSL_SESSION_free(e.session); // null-safe
        e.session = s;
        e.stamp = m_next++;
    } catch (...) { // out of memory: the session is just not kept
        SSL_SESSION_free(s);
    }
}

SSL_SESSION* tls_session_cache::get(const std::string& key) noexcept {
    std::lock_guard<std::mutex> lock(m_mutex);
    auto it = m_map.find(key);
    if (it == m_map.end() || SSL_SESSION_is_resumable(it->second.session) == 0) {
        return nullptr;
    }
    SSL_SESSION_up_ref(it->second.session);
    return it->second.session;
}

namespace {

[[noreturn]] void config_error(const std::string& what, const std::string& file = {},
                               const char* fallback = "unknown error") {
    std::string reason = take_error_queue(fallback);
    throw tls_error(tls_errc::config, "tls_context: " + what + ": " + reason, reason, {}, file);
}

// PEM text of a file option. Read here rather than by OpenSSL so that a
// missing or unreadable file is reported with the system's reason.
std::string read_file(const std::string& path, const std::string& label) {
    std::ifstream f(path, std::ios::binary);
    if (!f) {
        std::string reason = std::strerror(errno);
        throw tls_error(tls_errc::config, "tls_context: " + label + " " + path + ": " + reason,
                        reason, {}, path);
    }
    // Not `stream << f.rdbuf()`: that swallows a failure (std::bad_alloc, a
    // read error) and leaves a truncated text, which OpenSSL would then
    // report as a malformed certificate.
    std::string text;
    char buf[4096];
    while (f.read(buf, sizeof buf) || f.gcount() > 0) {
        text.append(buf, static_cast<std::size_t>(f.gcount()));
    }
    if (f.bad()) {
        std::string reason = std::strerror(errno);
        throw tls_error(tls_errc::config,
                        "tls_context: reading " + label + " " + path + ": " + reason, reason, {},
                        path);
    }
    return text;
}

int no_password(char*, int, int, void*) {
    return 0; // encrypted keys fail ("bad password read") instead of prompting on a terminal
}

struct bio_deleter {
    void operator()(BIO* b) const noexcept { BIO_free(b); }
};
using bio_ptr = std::unique_ptr<BIO, bio_deleter>;

bio_ptr pem_bio(const std::string& pem) {
    return bio_ptr(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
}

// The end of the PEM input is a PEM_R_NO_START_LINE on the queue: not an error.
bool at_pem_end() {
    unsigned long e = ERR_peek_last_error();
    if (ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE) {
        ERR_clear_error();
        return true;
    }
    return false;
}

// Which option a PEM came from, for messages: "certificate chain /x.pem" or
// "certificate chain (cert_pem)".
struct pem_source {
    std::string text;
    std::string label;
    std::string file;
};

pem_source source(const std::string& file, const std::string& pem, const char* label,
                  const char* pem_field) {
    if (!file.empty() && !pem.empty()) {
        throw std::invalid_argument(std::string("tls_context: give ") + label + " as a file or " +
                                    pem_field + ", not both");
    }
    if (!file.empty()) {
        return {read_file(file, label), std::string(label) + " " + file, file};
    }
    return {pem, std::string(label) + " (" + pem_field + ")", {}};
}

void use_chain(SSL_CTX* ctx, const pem_source& src) {
    bio_ptr b = pem_bio(src.text);
    X509* leaf = PEM_read_bio_X509_AUX(b.get(), nullptr, no_password, nullptr);
    if (leaf == nullptr || SSL_CTX_use_certificate(ctx, leaf) != 1) {
        X509_free(leaf);
        config_error(src.label, src.file);
    }
    X509_free(leaf);
    SSL_CTX_clear_chain_certs(ctx);
    while (X509* c = PEM_read_bio_X509(b.get(), nullptr, no_password, nullptr)) {
        if (SSL_CTX_add0_chain_cert(ctx, c) != 1) {
            X509_free(c);
            config_error(src.label, src.file);
        }
    }
    if (!at_pem_end()) {
        config_error(src.label, src.file);
    }
}

void use_key(SSL_CTX* ctx, const pem_source& src) {
    bio_ptr b = pem_bio(src.text);
    EVP_PKEY* k = PEM_read_bio_PrivateKey(b.get(), nullptr, no_password, nullptr);
    if (k == nullptr || SSL_CTX_use_PrivateKey(ctx, k) != 1) {
        EVP_PKEY_free(k);
        config_error(src.label, src.file);
    }
    EVP_PKEY_free(k);
    if (SSL_CTX_check_private_key(ctx) != 1) {
        config_error(src.label + " does not match the certificate", src.file);
    }
}

void add_cas(SSL_CTX* ctx, const pem_source& src) {
    bio_ptr b = pem_bio(src.text);
    X509_STORE* store = SSL_CTX_get_cert_store(ctx);
    int n = 0;
    while (X509* c = PEM_read_bio_X509(b.get(), nullptr, no_password, nullptr)) {
        int ok = X509_STORE_add_cert(store, c);
        X509_free(c);
        if (ok != 1) {
            config_error(src.label, src.file);
        }
        ++n;
    }
    if (!at_pem_end() || n == 0) {
        config_error(src.label, src.file, "no certificate found");
    }
}

void use_ca_dir(SSL_CTX* ctx, const std::string& dir) {
    struct stat sb {};
    const char* reason = nullptr;
    if (::stat(dir.c_str(), &sb) != 0) {
        reason = std::strerror(errno);
    } else if (!S_ISDIR(sb.st_mode)) {
        reason = "not a directory";
    }
    if (reason != nullptr) {
        throw tls_error(tls_errc::config, "tls_context: CA directory " + dir + ": " + reason,
                        reason, {}, dir);
    }
    if (SSL_CTX_load_verify_dir(ctx, dir.c_str()) != 1) {
        config_error("CA directory " + dir, dir);
    }
}

int proto_version(tls_version v) {
    return v == tls_version::tls1_3 ? TLS1_3_VERSION : TLS1_2_VERSION;
}

std::string alpn_wire(const std::vector<std::string>& names) {
    std::string w;
    for (const std::string& n : names) {
        if (n.empty() || n.size() > 255) {
            throw std::invalid_argument("tls_context: ALPN protocol names are 1 to 255 bytes: '" +
                                        n + "'");
        }
        w += static_cast<char>(n.size());
        w += n;
    }
    return w;
}

int select_alpn(SSL*, const unsigned char** out, unsigned char* outlen, const unsigned char* in,
                unsigned int inlen, void* arg) {
    const std::string& ours = static_cast<tls_context_impl*>(arg)->alpn_wire;
    unsigned char* sel = nullptr;
    unsigned char sel_len = 0;
    if (SSL_select_next_proto(&sel, &sel_len, reinterpret_cast<const unsigned char*>(ours.data()),
                              static_cast<unsigned int>(ours.size()), in,
                              inlen) == OPENSSL_NPN_NEGOTIATED) {
        *out = sel;
        *outlen = sel_len;
        return SSL_TLSEXT_ERR_OK;
    }
    return SSL_TLSEXT_ERR_NOACK; // no common protocol: go on without ALPN
}

std::shared_ptr<tls_context_impl> make_context(const tls_context_options& o, bool server) {
    const char* who = server ? "tls_context::server" : "tls_context::client";
    if (o.min_version > o.max_version) {
        throw std::invalid_argument(std::string(who) + ": min_version above max_version");
    }
    pem_source cert = source(o.cert_file, o.cert_pem, "certificate chain", "cert_pem");
    pem_source key = source(o.key_file, o.key_pem, "private key", "key_pem");
    pem_source ca = source(o.ca_file, o.ca_pem, "CA certificates", "ca_pem");
    const bool have_ca = !ca.text.empty() || !o.ca_dir.empty();
    if (server && (cert.text.empty() || key.text.empty())) {
        throw std::invalid_argument(std::string(who) +
                                    ": a server needs a certificate chain and a private key "
                                    "(cert_file or cert_pem, key_file or key_pem)");
    }
    if (cert.text.empty() != key.text.empty()) {
        throw std::invalid_argument(std::string(who) +
                                    ": a certificate chain needs its private key and vice versa");
    }
    if (server && o.client_auth != tls_client_auth::none && !have_ca) {
        throw std::invalid_argument(std::string(who) +
                                    ": client_auth needs the CAs to verify clients with "
                                    "(ca_file, ca_dir or ca_pem)");
    }

    ERR_clear_error();
    auto impl = std::make_shared<tls_context_impl>();
    impl->server = server;
    impl->ctx.reset(SSL_CTX_new(server ? TLS_server_method() : TLS_client_method()));
    SSL_CTX* ctx = impl->ctx.get();
    if (ctx == nullptr) {
        config_error("SSL_CTX_new");
    }
    SSL_CTX_set_app_data(ctx, impl.get());
    SSL_CTX_set_mode(ctx, SSL_MODE_RELEASE_BUFFERS);
    SSL_CTX_set_options(ctx, SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                 (server ? SSL_OP_CIPHER_SERVER_PREFERENCE : 0));
    if (SSL_CTX_set_min_proto_version(ctx, proto_version(o.min_version)) != 1 ||
        SSL_CTX_set_max_proto_version(ctx, proto_version(o.max_version)) != 1) {
        config_error("protocol versions");
    }
    if (!o.ciphers.empty() && SSL_CTX_set_cipher_list(ctx, o.ciphers.c_str()) != 1) {
        config_error("ciphers '" + o.ciphers + "'");
    }
    if (!o.ciphersuites.empty() && SSL_CTX_set_ciphersuites(ctx, o.ciphersuites.c_str()) != 1) {
        config_error("ciphersuites '" + o.ciphersuites + "'");
    }
    if (!cert.text.empty()) {
        use_chain(ctx, cert);
        use_key(ctx, key);
    }
    if (!ca.text.empty()) {
        add_cas(ctx, ca);
    }
    if (!o.ca_dir.empty()) {
        use_ca_dir(ctx, o.ca_dir);
    }

    if (server) {
        int mode = SSL_VERIFY_NONE;
        if (o.client_auth != tls_client_auth::none) {
            mode = SSL_VERIFY_PEER;
            if (o.client_auth == tls_client_auth::required) {
                mode |= SSL_VERIFY_FAIL_IF_NO_PEER_CERT;
            }
        }
        SSL_CTX_set_verify(ctx, mode, nullptr);
        static const unsigned char sid_ctx[] = "coio";
        SSL_CTX_set_session_id_context(ctx, sid_ctx, sizeof sid_ctx - 1);
        if (!o.session_resumption) {
            SSL_CTX_set_options(ctx, SSL_OP_NO_TICKET);
            SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
            SSL_CTX_set_num_tickets(ctx, 0);
        }
        impl->alpn_wire = alpn_wire(o.alpn);
        if (!impl->alpn_wire.empty()) {
            SSL_CTX_set_alpn_select_cb(ctx, select_alpn, impl.get());
        }
        return impl;
    }

    impl->verify = o.verify;
    impl->check_hostname = o.verify && o.check_hostname;
    impl->resume = o.session_resumption;
    SSL_CTX_set_verify(ctx, o.verify ? SSL_VERIFY_PEER : SSL_VERIFY_NONE, nullptr);
    if (o.verify && !have_ca && SSL_CTX_set_default_verify_paths(ctx) != 1) {
        config_error("the system's default CA store");
    }
    if (o.session_resumption) {
        SSL_CTX_set_session_cache_mode(ctx,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ctx, cache_new_session);
    } else {
        SSL_CTX_set_session_cache_mode(ctx, SSL_SESS_CACHE_OFF);
    }
    const std::string wire = alpn_wire(o.alpn);
    if (!wire.empty() &&
        SSL_CTX_set_alpn_protos(ctx, reinterpret_cast<const unsigned char*>(wire.data()),
                                static_cast<unsigned int>(wire.size())) != 0) {
        config_error("ALPN protocols");
    }
    return impl;
}

} // namespace

std::unique_ptr<stream_transport> make_tls_transport(const tls_context& ctx, const tls_options& o,
                                                     const address& peer) {
    if (!ctx) {
        throw std::invalid_argument("coio: start_tls with an empty tls_context");
    }
    return std::make_unique<tls_engine>(ctx.impl(), o, peer);
}

} // namespace detail

tls_context tls_context::client(tls_context_options opts) {
    return tls_context(detail::make_context(opts, false));
}

tls_context tls_context::client() {
    return client(tls_context_options{});
}

tls_context tls_context::server(tls_context_options opts) {
    return tls_context(detail::make_context(opts, true));
}

bool tls_context::is_server() const noexcept {
    return m_impl && m_impl->server;
}

} // namespace coio
