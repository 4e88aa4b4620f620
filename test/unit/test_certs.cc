#include "test_certs.h"

#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <cstdio>
#include <stdexcept>

namespace grelay::test {
namespace {

EVP_PKEY* new_key() {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  if (!key) throw std::runtime_error("EVP_EC_gen failed");
  return key;
}

void add_ext(X509* cert, X509* issuer, int nid, const std::string& value) {
  X509V3_CTX ctx;
  X509V3_set_ctx(&ctx, issuer, cert, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value.c_str());
  if (!ext) throw std::runtime_error("bad extension " + value);
  X509_add_ext(cert, ext, -1);
  X509_EXTENSION_free(ext);
}

X509* new_cert(EVP_PKEY* key, const std::string& cn, long serial, long from_s, long to_s) {
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), serial);
  X509_gmtime_adj(X509_getm_notBefore(cert), from_s);
  X509_gmtime_adj(X509_getm_notAfter(cert), to_s);
  X509_set_pubkey(cert, key);
  X509_NAME_add_entry_by_txt(X509_get_subject_name(cert), "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1, 0);
  return cert;
}

void write_pem(const std::string& path, X509* cert, EVP_PKEY* key) {
  std::FILE* f = std::fopen(path.c_str(), "w");
  if (!f) throw std::runtime_error("cannot write " + path);
  bool ok = cert ? PEM_write_X509(f, cert) == 1
                 : PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1;
  std::fclose(f);
  if (!ok) throw std::runtime_error("cannot write PEM to " + path);
}

}  // namespace

TestPki::TestPki(const std::filesystem::path& dir) : dir_(dir) {
  std::filesystem::create_directories(dir_);
  ca_key_ = new_key();
  ca_cert_ = new_cert(ca_key_, "test-ca-" + dir_.filename().string(), 1, -86400, 86400 * 3);
  X509_set_issuer_name(ca_cert_, X509_get_subject_name(ca_cert_));
  add_ext(ca_cert_, ca_cert_, NID_basic_constraints, "critical,CA:TRUE");
  add_ext(ca_cert_, ca_cert_, NID_key_usage, "critical,keyCertSign,cRLSign");
  X509_sign(ca_cert_, ca_key_, EVP_sha256());
  ca_path_ = (dir_ / "ca.pem").string();
  write_pem(ca_path_, ca_cert_, nullptr);
}

TestPki::~TestPki() {
  X509_free(ca_cert_);
  EVP_PKEY_free(ca_key_);
}

TestPki::Pair TestPki::issue(const std::string& name, const std::string& sans, long serial,
                             bool expired) {
  EVP_PKEY* key = new_key();
  X509* cert = expired ? new_cert(key, name, serial, -2 * 86400, -86400)
                       : new_cert(key, name, serial, -3600, 86400 * 2);
  X509_set_issuer_name(cert, X509_get_subject_name(ca_cert_));
  add_ext(cert, ca_cert_, NID_basic_constraints, "CA:FALSE");
  if (!sans.empty()) add_ext(cert, ca_cert_, NID_subject_alt_name, sans);
  X509_sign(cert, ca_key_, EVP_sha256());
  Pair pair{(dir_ / (name + ".pem")).string(), (dir_ / (name + ".key")).string()};
  write_pem(pair.cert, cert, nullptr);
  write_pem(pair.key, nullptr, key);
  X509_free(cert);
  EVP_PKEY_free(key);
  return pair;
}

long serial_of(const std::string& cert_file) {
  std::FILE* f = std::fopen(cert_file.c_str(), "r");
  if (!f) return -1;
  X509* cert = PEM_read_X509(f, nullptr, nullptr, nullptr);
  std::fclose(f);
  if (!cert) return -1;
  long serial = ASN1_INTEGER_get(X509_get0_serialNumber(cert));
  X509_free(cert);
  return serial;
}

}  // namespace grelay::test
