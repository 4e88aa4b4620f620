#pragma once

#include <openssl/ssl.h>

#include <string>

namespace grelay {

// PEM files loaded into an SSL_CTX. Each function returns "" on success, or one line saying
// what is wrong with which file. They leave the calling thread's OpenSSL error queue empty.

// The certificate chain in |cert| (leaf first) and the private key in |key|, which must match.
std::string load_cert_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key);

// The CA certificates in |ca| as the trust anchors for verifying peers.
std::string load_verify_ca(SSL_CTX* ctx, const std::string& ca);

// Checks, as load_cert_pair() and load_verify_ca() would, on a scratch context: for config
// validation, so that a bad file is an error at load time.
std::string check_cert_pair(const std::string& cert, const std::string& key);
std::string check_ca(const std::string& ca);

// The oldest error on the calling thread's OpenSSL error queue as text, and the queue
// cleared; "unknown error" when it is empty.
std::string take_openssl_error();

}  // namespace grelay
