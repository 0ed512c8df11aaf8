// lib/tls/openssl/info.cpp - tls_info of an established session: what was
// negotiated and the peer's certificate, read from OpenSSL when asked (a
// session keeps no copy of its own).
#include "tls/openssl/engine.hpp"

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/x509v3.h>

#include <arpa/inet.h>

#include <ctime>
#include <memory>

namespace coio::detail {

namespace {

std::string name_text(const X509_NAME* n) {
    BIO* b = BIO_new(BIO_s_mem());
    if (b == nullptr) {
        return {};
    }
    std::string out;
    if (X509_NAME_print_ex(b, n, 0, XN_FLAG_RFC2253) >= 0) {
        char* data = nullptr;
        long len = BIO_get_mem_data(b, &data);
        out.assign(data, static_cast<std::size_t>(len));
    }
    BIO_free(b);
    return out;
}

std::chrono::system_clock::time_point time_point_of(const ASN1_TIME* t) {
    std::tm tm{};
    if (t == nullptr || ASN1_TIME_to_tm(t, &tm) != 1) {
        return {};
    }
    return std::chrono::system_clock::from_time_t(::timegm(&tm));
}

void add_alt_names(X509* cert, tls_certificate_info& c) {
    auto* names =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    if (names == nullptr) {
        return;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(names, i);
        if (g->type == GEN_DNS) {
            const ASN1_STRING* s = g->d.dNSName;
            c.dns_names.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                                     static_cast<std::size_t>(ASN1_STRING_length(s)));
        } else if (g->type == GEN_IPADD) {
            const ASN1_OCTET_STRING* s = g->d.iPAddress;
            const int len = ASN1_STRING_length(s);
            char text[INET6_ADDRSTRLEN] = {};
            const int family = len == 4 ? AF_INET : len == 16 ? AF_INET6 : 0;
            if (family != 0 &&
                ::inet_ntop(family, ASN1_STRING_get0_data(s), text, sizeof text) != nullptr) {
                c.ip_addresses.emplace_back(text);
            }
        }
    }
    GENERAL_NAMES_free(names);
}

std::string hex(const unsigned char* p, std::size_t n) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(n * 2);
    for (std::size_t i = 0; i < n; ++i) {
        out += digits[p[i] >> 4];
        out += digits[p[i] & 15];
    }
    return out;
}

tls_certificate_info describe_certificate(X509* cert) {
    tls_certificate_info c;
    c.subject = name_text(X509_get_subject_name(cert));
    c.issuer = name_text(X509_get_issuer_name(cert));
    add_alt_names(cert, c);
    if (BIGNUM* bn = ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert), nullptr)) {
        if (char* h = BN_bn2hex(bn)) {
            c.serial = h;
            OPENSSL_free(h);
        }
        BN_free(bn);
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) == 1) {
        c.sha256_fingerprint = hex(md, md_len);
    }
    c.not_before = time_point_of(X509_get0_notBefore(cert));
    c.not_after = time_point_of(X509_get0_notAfter(cert));
    return c;
}

} // namespace

tls_info describe_session(const SSL* ssl) {
    tls_info i;
    i.version = SSL_get_version(ssl);
    if (const SSL_CIPHER* c = SSL_get_current_cipher(ssl)) {
        i.cipher = SSL_CIPHER_get_name(c);
    }
    const unsigned char* alpn = nullptr;
    unsigned int alpn_len = 0;
    SSL_get0_alpn_selected(ssl, &alpn, &alpn_len);
    if (alpn != nullptr) {
        i.alpn.assign(reinterpret_cast<const char*>(alpn), alpn_len);
    }
    if (const char* sn = SSL_get_servername(ssl, TLSEXT_NAMETYPE_host_name)) {
        i.server_name = sn;
    }
    i.session_reused = SSL_session_reused(ssl) == 1;
    if (X509* cert = SSL_get0_peer_certificate(ssl)) {
        i.peer_certificate = describe_certificate(cert);
        i.peer_verified = (SSL_get_verify_mode(ssl) & SSL_VERIFY_PEER) != 0 &&
                          SSL_get_verify_result(ssl) == X509_V_OK;
    }
    return i;
}

} // namespace coio::detail
