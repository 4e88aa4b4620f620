#pragma once

#include <openssl/evp.h>
#include <openssl/x509.h>

#include <filesystem>
#include <string>
#include <vector>

namespace grelay::test {

// A throwaway CA that writes PEM certificates and keys into a directory, for the TLS tests.
class TestPki {
 public:
  explicit TestPki(const std::filesystem::path& dir);
  ~TestPki();
  TestPki(const TestPki&) = delete;
  TestPki& operator=(const TestPki&) = delete;

  struct Pair {
    std::string cert;
    std::string key;
  };

  // A certificate for CN |name| with subjectAltNames |sans| ("DNS:a.test,IP:127.0.0.1"),
  // written to DIR/|name|.pem and DIR/|name|.key. |expired|: valid yesterday only.
  Pair issue(const std::string& name, const std::string& sans, long serial, bool expired = false);

  const std::string& ca() const noexcept { return ca_path_; }
  const std::filesystem::path& dir() const noexcept { return dir_; }

 private:
  std::filesystem::path dir_;
  EVP_PKEY* ca_key_ = nullptr;
  X509* ca_cert_ = nullptr;
  std::string ca_path_;
};

// The serial number of a PEM certificate file, or -1.
long serial_of(const std::string& cert_file);

}  // namespace grelay::test
