#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdio>
#include <string>
#include <string_view>

#include "core/percent.h"
#include "core/small_vector.h"
#include "grelay/status.h"
#include "h2/field_name.h"

namespace grelay {

inline std::string_view rcbuf_view(nghttp2_rcbuf* buf) noexcept {
  nghttp2_vec v = nghttp2_rcbuf_get_buf(buf);
  return {reinterpret_cast<const char*>(v.base), v.len};
}

// Header fields kept by reference: to nghttp2's own buffers (no copy of names or values), or
// to bytes the field's downstream keeps until the stream's handler is told of its close.
class HeaderList {
 public:
  struct Field {
    std::string_view name;
    std::string_view value;
    // The buffers |name| and |value| view, referenced; null for a field whose bytes belong to
    // its downstream.
    nghttp2_rcbuf* name_buf;
    nghttp2_rcbuf* value_buf;
  };

  HeaderList() = default;
  ~HeaderList() { clear(); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;

  void add(nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
    add(name, value, rcbuf_view(name), rcbuf_view(value));
  }
  // |n| and |v| view |name| and |value|, or, where those are null, bytes that outlive the list.
  void add(nghttp2_rcbuf* name, nghttp2_rcbuf* value, std::string_view n, std::string_view v) {
    fields_.push_back({n, v, name, value});
    if (name) nghttp2_rcbuf_incref(name);
    if (value) nghttp2_rcbuf_incref(value);
  }

  void clear() noexcept {
    for (Field& f : fields_) {
      if (f.name_buf) nghttp2_rcbuf_decref(f.name_buf);
      if (f.value_buf) nghttp2_rcbuf_decref(f.value_buf);
    }
    fields_.clear();
  }

  // The value of the first field named |name|, or an empty view.
  std::string_view get(std::string_view name) const noexcept {
    for (const Field& f : fields_) {
      if (f.name == name) return f.value;
    }
    return {};
  }

  bool has(std::string_view name) const noexcept {
    for (const Field& f : fields_) {
      if (f.name == name) return true;
    }
    return false;
  }

  bool empty() const noexcept { return fields_.empty(); }
  const SmallVector<Field, 16>& fields() const noexcept { return fields_; }

 private:
  SmallVector<Field, 16> fields_;
};

// Builds an nghttp2_nv array. add() fields must outlive the submit call only (nghttp2 copies
// them). add_kept() fields are not copied: they must stay valid until nghttp2 has serialized
// the frame or dropped it, which holds for string literals and for fields of a HeaderList that
// lives as long as the stream's Call (a Call resets its streams before it releases its
// headers, and nghttp2 never serializes a HEADERS frame for a closed or cancelled stream).
// Names given to add_kept() must be lowercase: nghttp2 lowercases only names it copies.
class NvArray {
 public:
  void add(std::string_view name, std::string_view value) {
    push(name, value, NGHTTP2_NV_FLAG_NONE);
  }
  void add_kept(std::string_view name, std::string_view value) {
    push(name, value, NGHTTP2_NV_FLAG_NO_COPY_NAME | NGHTTP2_NV_FLAG_NO_COPY_VALUE);
  }
  const nghttp2_nv* data() const noexcept { return nva_.data(); }
  size_t size() const noexcept { return nva_.size(); }

 private:
  void push(std::string_view name, std::string_view value, uint8_t flags) {
    nva_.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                    reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                    value.size(), flags});
  }

  SmallVector<nghttp2_nv, 24> nva_;
};

// The grpc-status and grpc-message fields of a relay-made status.
struct StatusFields {
  StatusFields(StatusCode status, const std::string& message)
      : encoded(percent_encode_grpc_message(message)) {
    std::snprintf(code, sizeof(code), "%d", static_cast<int>(status));
  }
  void add_to(NvArray& nva) const {
    nva.add("grpc-status", code);
    if (!encoded.empty()) nva.add("grpc-message", encoded);
  }
  char code[4];
  std::string encoded;
};

// Connection-specific fields that HTTP/2 forbids or that describe one hop only.
inline bool is_hop_by_hop(std::string_view name) noexcept {
  return is_hop_by_hop(classify_field(name));
}

}  // namespace grelay
