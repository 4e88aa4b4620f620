#include "net/tls_layer.h"

#include <arpa/inet.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <cstring>

#include "config/tls_files.h"

namespace grelay {

// The BIO under every TlsLayer: reads from the layer's input span, writes to its wire chain.
struct TlsBio {
  static BIO_METHOD* method() noexcept {
    static BIO_METHOD* const m = [] {
      BIO_METHOD* meth = BIO_meth_new(BIO_get_new_index() | BIO_TYPE_SOURCE_SINK, "grelay");
      BIO_meth_set_write(meth, write);
      BIO_meth_set_read(meth, read);
      BIO_meth_set_ctrl(meth, ctrl);
      BIO_meth_set_create(meth, create);
      return meth;
    }();
    return m;
  }

  static TlsLayer* layer(BIO* bio) noexcept { return static_cast<TlsLayer*>(BIO_get_data(bio)); }

  static int write(BIO* bio, const char* data, int len) noexcept {
    BIO_clear_retry_flags(bio);
    if (len <= 0) return 0;
    layer(bio)->wire_.append(data, static_cast<size_t>(len));
    return len;
  }

  static int read(BIO* bio, char* out, int len) noexcept {
    BIO_clear_retry_flags(bio);
    TlsLayer* self = layer(bio);
    if (self->input_len_ == 0) {
      BIO_set_retry_read(bio);
      return -1;
    }
    size_t n = std::min(self->input_len_, static_cast<size_t>(std::max(len, 0)));
    std::memcpy(out, self->input_, n);
    self->input_ += n;
    self->input_len_ -= n;
    return static_cast<int>(n);
  }

  static long ctrl(BIO*, int cmd, long, void*) noexcept { return cmd == BIO_CTRL_FLUSH ? 1 : 0; }

  static int create(BIO* bio) noexcept {
    BIO_set_init(bio, 1);
    return 1;
  }
};

namespace {

// The most plaintext one TLS record carries.
constexpr size_t max_record_plaintext = 16384;
// Where small pieces of plaintext are gathered into one record; used within seal() only.
thread_local uint8_t record_buffer[max_record_plaintext];

std::string asn1_text(const ASN1_STRING* s) {
  return std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(s)),
                     static_cast<size_t>(ASN1_STRING_length(s)));
}

std::unique_ptr<PeerIdentity> read_identity(X509* cert) {
  auto id = std::make_unique<PeerIdentity>();
  if (BIO* mem = BIO_new(BIO_s_mem())) {
    X509_NAME_print_ex(mem, X509_get_subject_name(cert), 0, XN_FLAG_RFC2253);
    char* data = nullptr;
    long len = BIO_get_mem_data(mem, &data);
    if (len > 0) id->subject.assign(data, static_cast<size_t>(len));
    BIO_free(mem);
  }
  id->description = "subject=" + id->subject;
  auto* names =
      static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  int count = names ? sk_GENERAL_NAME_num(names) : 0;
  for (int i = 0; i < count; ++i) {
    const GENERAL_NAME* name = sk_GENERAL_NAME_value(names, i);
    std::string value;
    const char* kind = nullptr;
    if (name->type == GEN_DNS) {
      kind = "DNS";
      value = asn1_text(name->d.dNSName);
    } else if (name->type == GEN_URI) {
      kind = "URI";
      value = asn1_text(name->d.uniformResourceIdentifier);
    } else if (name->type == GEN_EMAIL) {
      kind = "email";
      value = asn1_text(name->d.rfc822Name);
    } else if (name->type == GEN_IPADD) {
      kind = "IP";
      char text[INET6_ADDRSTRLEN] = "";
      int len = ASN1_STRING_length(name->d.iPAddress);
      const unsigned char* bytes = ASN1_STRING_get0_data(name->d.iPAddress);
      if (len == 4 || len == 16)
        inet_ntop(len == 4 ? AF_INET : AF_INET6, bytes, text, sizeof(text));
      value = text;
    }
    if (!kind || value.empty()) continue;
    id->description += (id->sans.empty() ? " san=" : ",");
    id->description += std::string(kind) + ":" + value;
    id->sans.push_back(std::move(value));
  }
  GENERAL_NAMES_free(names);
  return id;
}

}  // namespace

TlsLayer::TlsLayer(SSL* ssl, std::shared_ptr<const void> keep_alive, ChunkPool& pool) noexcept
    : ssl_(ssl), keep_alive_(std::move(keep_alive)), wire_(pool) {
  BIO* bio = BIO_new(TlsBio::method());
  if (bio) {
    BIO_set_data(bio, this);
    // One BIO both ways: the SSL takes the one reference.
    SSL_set_bio(ssl_, bio, bio);
  }
}

TlsLayer::~TlsLayer() {
  SSL_free(ssl_);
}

void TlsLayer::set_input(const uint8_t* data, size_t len) noexcept {
  input_ = data;
  input_len_ = len;
  // SSL_get_error() reads the thread's error queue: nothing stale may be left in it.
  if (len > 0) ERR_clear_error();
}

TlsLayer::Step TlsLayer::handshake() noexcept {
  ERR_clear_error();
  int rc = SSL_do_handshake(ssl_);
  if (rc == 1) return finish_handshake();
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ || err == SSL_ERROR_WANT_WRITE) return Step::more;
  record_error(err);
  return Step::failed;
}

TlsLayer::Step TlsLayer::finish_handshake() noexcept {
  established_ = true;
  if (!SSL_is_server(ssl_)) {
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &proto, &len);
    if (len != 2 || std::memcmp(proto, "h2", 2) != 0) {
      error_ = "the backend did not select HTTP/2 with ALPN";
      return Step::failed;
    }
    return Step::done;
  }
  X509* cert = SSL_get0_peer_certificate(ssl_);
  if (cert && SSL_get_verify_result(ssl_) == X509_V_OK) peer_ = read_identity(cert);
  return Step::done;
}

long TlsLayer::read(uint8_t* buf, size_t len) noexcept {
  size_t n = 0;
  int rc = SSL_read_ex(ssl_, buf, len, &n);
  if (rc == 1) return static_cast<long>(n);
  int err = SSL_get_error(ssl_, rc);
  if (err == SSL_ERROR_WANT_READ) return 0;
  record_error(err);
  return -1;
}

bool TlsLayer::seal(ChunkChain& plain, size_t limit) noexcept {
  if (!established_ || plain.empty()) return true;
  ERR_clear_error();
  while (!plain.empty() && wire_.size() < limit) {
    // Each SSL_write makes at least one record, and the peer pays for every record it opens
    // (a header read, an AEAD check). The chain holds frames and relinked DATA chunks of any
    // size, so pieces smaller than a record are gathered into one before sealing.
    iovec front;
    plain.peek(&front, 1);
    const void* data = front.iov_base;
    size_t len = front.iov_len;
    if (len < max_record_plaintext && plain.size() > len) {
      len = plain.copy_out(record_buffer, max_record_plaintext);
      data = record_buffer;
    }
    size_t written = 0;
    int rc = SSL_write_ex(ssl_, data, len, &written);
    if (rc != 1) {
      record_error(SSL_get_error(ssl_, rc));
      return false;
    }
    plain.drain(written);
  }
  return true;
}

void TlsLayer::shutdown() noexcept {
  if (!established_) return;
  SSL_shutdown(ssl_);
  ERR_clear_error();
}

void TlsLayer::record_error(int err) noexcept {
  if (err == SSL_ERROR_ZERO_RETURN) {
    error_ = "the peer closed the TLS session";
  } else if (err == SSL_ERROR_SSL) {
    long verify = SSL_get_verify_result(ssl_);
    if (verify != X509_V_OK) {
      error_ =
          std::string("certificate verification failed: ") + X509_verify_cert_error_string(verify);
    } else {
      error_ = take_openssl_error();
    }
  } else if (err == SSL_ERROR_SYSCALL) {
    error_ = "the TLS stream ended unexpectedly";
  } else {
    error_ = "TLS error " + std::to_string(err);
  }
  ERR_clear_error();
}

}  // namespace grelay
