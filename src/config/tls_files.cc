#include "config/tls_files.h"

#include <fcntl.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cerrno>
#include <memory>
#include <system_error>

namespace grelay {
namespace {

struct CtxDeleter {
  void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};

// "" when |path| can be opened for reading, else why not. OpenSSL's own messages for a
// missing file are vague; this names the file and the errno.
std::string readable(const std::string& what, const std::string& path) {
  if (path.empty()) return what + " file name is empty";
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return "cannot read " + what + " '" + path +
           "': " + std::error_code(errno, std::generic_category()).message();
  }
  ::close(fd);
  return "";
}

}  // namespace

std::string take_openssl_error() {
  unsigned long code = ERR_get_error();
  ERR_clear_error();
  if (code == 0) return "unknown error";
  const char* reason = ERR_reason_error_string(code);
  if (reason) return reason;
  char buf[256];
  ERR_error_string_n(code, buf, sizeof(buf));
  return buf;
}

std::string load_cert_pair(SSL_CTX* ctx, const std::string& cert, const std::string& key) {
  ERR_clear_error();
  if (std::string why = readable("certificate", cert); !why.empty()) return why;
  if (std::string why = readable("private key", key); !why.empty()) return why;
  if (SSL_CTX_use_certificate_chain_file(ctx, cert.c_str()) != 1) {
    return "certificate '" + cert + "' is not a usable PEM certificate chain (" +
           take_openssl_error() + ")";
  }
  if (SSL_CTX_use_PrivateKey_file(ctx, key.c_str(), SSL_FILETYPE_PEM) != 1) {
    std::string detail = take_openssl_error();
    if (detail.find("mismatch") != std::string::npos) {
      return "private key '" + key + "' does not match certificate '" + cert + "'";
    }
    return "private key '" + key + "' is not a usable PEM private key (" + detail + ")";
  }
  if (SSL_CTX_check_private_key(ctx) != 1) {
    ERR_clear_error();
    return "private key '" + key + "' does not match certificate '" + cert + "'";
  }
  return "";
}

std::string load_verify_ca(SSL_CTX* ctx, const std::string& ca) {
  ERR_clear_error();
  if (std::string why = readable("CA file", ca); !why.empty()) return why;
  if (SSL_CTX_load_verify_locations(ctx, ca.c_str(), nullptr) != 1) {
    return "CA file '" + ca + "' holds no usable PEM certificate (" + take_openssl_error() + ")";
  }
  return "";
}

std::string check_cert_pair(const std::string& cert, const std::string& key) {
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return "cannot create a TLS context: " + take_openssl_error();
  return load_cert_pair(ctx.get(), cert, key);
}

std::string check_ca(const std::string& ca) {
  std::unique_ptr<SSL_CTX, CtxDeleter> ctx(SSL_CTX_new(TLS_method()));
  if (!ctx) return "cannot create a TLS context: " + take_openssl_error();
  return load_verify_ca(ctx.get(), ca);
}

}  // namespace grelay
