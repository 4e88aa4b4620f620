#pragma once

#include <nghttp2/nghttp2.h>

#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>
#include <vector>

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
  // A field as the list hands it out.
  struct Field {
    std::string_view name;
    std::string_view value;
    // The buffers |name| and |value| view, or null for bytes of the field's downstream.
    nghttp2_rcbuf* name_buf;
    nghttp2_rcbuf* value_buf;
  };

  // The fields in order, each made on access.
  class Fields {
   public:
    class iterator {
     public:
      iterator(const HeaderList* list, size_t i) noexcept : list_(list), i_(i) {}
      Field operator*() const noexcept { return list_->at(i_); }
      iterator& operator++() noexcept {
        ++i_;
        return *this;
      }
      bool operator!=(const iterator& other) const noexcept { return i_ != other.i_; }

     private:
      const HeaderList* list_;
      size_t i_;
    };
    explicit Fields(const HeaderList* list) noexcept : list_(list) {}
    size_t size() const noexcept { return list_->slots_.size(); }
    Field operator[](size_t i) const noexcept { return list_->at(i); }
    iterator begin() const noexcept { return {list_, 0}; }
    iterator end() const noexcept { return {list_, size()}; }

   private:
    const HeaderList* list_;
  };

  HeaderList() = default;
  ~HeaderList() { clear(); }
  HeaderList(const HeaderList&) = delete;
  HeaderList& operator=(const HeaderList&) = delete;

  void add(nghttp2_rcbuf* name, nghttp2_rcbuf* value) {
    slots_.push_back({reinterpret_cast<uintptr_t>(name), reinterpret_cast<uintptr_t>(value)});
    nghttp2_rcbuf_incref(name);
    nghttp2_rcbuf_incref(value);
  }
  // |n| and |v| view |name| and |value|, or, where those are null, bytes that outlive the list.
  void add(nghttp2_rcbuf* name, nghttp2_rcbuf* value, std::string_view n, std::string_view v) {
    slots_.push_back({side(name, n), side(value, v)});
    if (name) nghttp2_rcbuf_incref(name);
    if (value) nghttp2_rcbuf_incref(value);
  }

  void clear() noexcept {
    for (const Slot& s : slots_) {
      if (!(s.name & 1)) nghttp2_rcbuf_decref(reinterpret_cast<nghttp2_rcbuf*>(s.name));
      if (!(s.value & 1)) nghttp2_rcbuf_decref(reinterpret_cast<nghttp2_rcbuf*>(s.value));
    }
    slots_.clear();
    views_.clear();
  }

  Field at(size_t i) const noexcept {
    const Slot& s = slots_.data()[i];
    return {view(s.name), view(s.value), buf(s.name), buf(s.value)};
  }
  Fields fields() const noexcept { return Fields(this); }

  // The value of the first field named |name|, or an empty view.
  std::string_view get(std::string_view name) const noexcept {
    for (const Slot& s : slots_) {
      if (view(s.name) == name) return view(s.value);
    }
    return {};
  }

  bool has(std::string_view name) const noexcept {
    for (const Slot& s : slots_) {
      if (view(s.name) == name) return true;
    }
    return false;
  }

  bool empty() const noexcept { return slots_.empty(); }

 private:
  // Each side of a field is an nghttp2 buffer's address, or (low bit set: buffers are aligned)
  // twice an index into |views_| plus one. Fields of nghttp2 buffers, the common case, take
  // 16 bytes and no allocation.
  struct Slot {
    uintptr_t name;
    uintptr_t value;
  };

  uintptr_t side(nghttp2_rcbuf* buf, std::string_view bytes) {
    if (buf) return reinterpret_cast<uintptr_t>(buf);
    views_.push_back(bytes);
    return ((views_.size() - 1) << 1) | 1;
  }
  std::string_view view(uintptr_t side) const noexcept {
    return side & 1 ? views_[side >> 1] : rcbuf_view(reinterpret_cast<nghttp2_rcbuf*>(side));
  }
  static nghttp2_rcbuf* buf(uintptr_t side) noexcept {
    return side & 1 ? nullptr : reinterpret_cast<nghttp2_rcbuf*>(side);
  }

  SmallVector<Slot, 16> slots_;
  std::vector<std::string_view> views_;
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
