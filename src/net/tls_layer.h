#pragma once

#include <openssl/ssl.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/chunk.h"

namespace grelay {

// Who the peer proved to be with a verified certificate.
struct PeerIdentity {
  // The subject, one line ("CN=client,O=Example").
  std::string subject;
  // subjectAltName values (DNS names, URIs, e-mail addresses, IP addresses as text).
  std::vector<std::string> sans;
  // "subject=... san=DNS:a,URI:b" for logs.
  std::string description;
};

// The TLS state of one Connection. Records pass through a BIO that reads the ciphertext the
// socket just delivered in place and appends the ciphertext to send straight to a chain, so
// each direction costs one copy in and out of OpenSSL and nothing more.
class TlsLayer {
 public:
  // Takes ownership of |ssl|. |keep_alive| holds whatever |ssl|'s callbacks refer to.
  TlsLayer(SSL* ssl, std::shared_ptr<const void> keep_alive, ChunkPool& pool) noexcept;
  ~TlsLayer();
  TlsLayer(const TlsLayer&) = delete;
  TlsLayer& operator=(const TlsLayer&) = delete;

  // Ciphertext for the handshake() and read() calls that follow. Every byte of it is taken
  // before read() reports that it needs more.
  void set_input(const uint8_t* data, size_t len) noexcept;

  enum class Step { more, done, failed };
  // Advances the handshake; handshake output lands in wire(). On |failed| error() says why
  // (and an alert for the peer may be in wire()).
  Step handshake() noexcept;
  bool established() const noexcept { return established_; }

  // Decrypts into |buf|. Returns the bytes written, 0 when the input is used up, or -1 when
  // the peer closed the TLS session or broke the protocol (error() says which).
  long read(uint8_t* buf, size_t len) noexcept;

  // Encrypts bytes from the front of |plain| into wire() (and drops them from |plain|) until
  // |plain| is empty or wire() holds |limit| bytes. Nothing moves before the handshake is
  // done. Returns false on failure.
  bool seal(ChunkChain& plain, size_t limit) noexcept;

  // Queues a close_notify alert in wire().
  void shutdown() noexcept;

  // Ciphertext waiting for the socket.
  ChunkChain& wire() noexcept { return wire_; }
  const std::string& error() const noexcept { return error_; }
  // The client's verified certificate (server side), or nullptr when it sent none.
  const PeerIdentity* peer() const noexcept { return peer_.get(); }
  SSL* ssl() const noexcept { return ssl_; }
  // The protocol the peer and this side chose with ALPN ("h2", "http/1.1"), or "" for none.
  std::string_view alpn() const noexcept {
    const unsigned char* proto = nullptr;
    unsigned int len = 0;
    SSL_get0_alpn_selected(ssl_, &proto, &len);
    return {reinterpret_cast<const char*>(proto), len};
  }
  // The negotiated protocol version and cipher, for logs.
  const char* version() const noexcept { return SSL_get_version(ssl_); }
  const char* cipher() const noexcept { return SSL_get_cipher_name(ssl_); }

 private:
  friend struct TlsBio;

  // Checks ALPN and reads the peer's identity once the handshake is done.
  Step finish_handshake() noexcept;
  // Sets error() from a failed SSL call's |rc|.
  void record_error(int rc) noexcept;

  SSL* ssl_;
  std::shared_ptr<const void> keep_alive_;
  ChunkChain wire_;
  const uint8_t* input_ = nullptr;
  size_t input_len_ = 0;
  bool established_ = false;
  std::unique_ptr<PeerIdentity> peer_;
  std::string error_;
};

}  // namespace grelay
