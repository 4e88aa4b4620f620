// frame_count_preload.so: an LD_PRELOAD library that counts the DATA frames a program
// built on the shared libnghttp2 receives and sends, for bench.py's counting pass. It is how
// the counting pass sees the client's side of a relay when the client is h2load.
//
//   GRELAY_FRAME_COUNT_FILE=FILE LD_PRELOAD=.../frame_count_preload.so h2load ...
//
// At exit the process writes one JSON line to FILE: {"data_frames_in":N,"data_bytes_in":B,
// "data_frames_out":N,"data_bytes_out":B} (frames and their payload bytes, padding
// included). It wraps the frame-received and frame-sent callbacks of every callbacks table
// the program makes: nghttp2_session_callbacks_new installs the counting callbacks, and the
// program's own ones, set afterwards, are called from them. Programs that link nghttp2
// statically (grelay) are not seen.

#include <dlfcn.h>
#include <nghttp2/nghttp2.h>

#include <atomic>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

using CallbacksNew = int (*)(nghttp2_session_callbacks**);
using SetFrameRecv = void (*)(nghttp2_session_callbacks*, nghttp2_on_frame_recv_callback);
using SetFrameSend = void (*)(nghttp2_session_callbacks*, nghttp2_on_frame_send_callback);

std::atomic<uint64_t> frames_in{0};
std::atomic<uint64_t> bytes_in{0};
std::atomic<uint64_t> frames_out{0};
std::atomic<uint64_t> bytes_out{0};

// The program's own callbacks. One program sets the same functions on every table it
// makes (h2load does), so one of each is kept.
std::atomic<nghttp2_on_frame_recv_callback> program_frame_recv{nullptr};
std::atomic<nghttp2_on_frame_send_callback> program_frame_send{nullptr};

template <typename Function>
Function next(const char* name) noexcept {
  return reinterpret_cast<Function>(dlsym(RTLD_NEXT, name));
}

int on_frame_recv(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_DATA) {
    frames_in.fetch_add(1, std::memory_order_relaxed);
    bytes_in.fetch_add(frame->hd.length, std::memory_order_relaxed);
  }
  auto program = program_frame_recv.load(std::memory_order_relaxed);
  return program != nullptr ? program(session, frame, user_data) : 0;
}

int on_frame_send(nghttp2_session* session, const nghttp2_frame* frame, void* user_data) {
  if (frame->hd.type == NGHTTP2_DATA) {
    frames_out.fetch_add(1, std::memory_order_relaxed);
    bytes_out.fetch_add(frame->hd.length, std::memory_order_relaxed);
  }
  auto program = program_frame_send.load(std::memory_order_relaxed);
  return program != nullptr ? program(session, frame, user_data) : 0;
}

__attribute__((destructor)) void write_counts() noexcept {
  const char* path = std::getenv("GRELAY_FRAME_COUNT_FILE");
  if (path == nullptr || *path == '\0') return;
  std::FILE* file = std::fopen(path, "w");
  if (file == nullptr) return;
  std::fprintf(file,
               "{\"data_frames_in\":%" PRIu64 ",\"data_bytes_in\":%" PRIu64
               ",\"data_frames_out\":%" PRIu64 ",\"data_bytes_out\":%" PRIu64 "}\n",
               frames_in.load(), bytes_in.load(), frames_out.load(), bytes_out.load());
  std::fclose(file);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) int nghttp2_session_callbacks_new(
    nghttp2_session_callbacks** callbacks_ptr) {
  static const auto real = next<CallbacksNew>("nghttp2_session_callbacks_new");
  static const auto set_recv =
      next<SetFrameRecv>("nghttp2_session_callbacks_set_on_frame_recv_callback");
  static const auto set_send =
      next<SetFrameSend>("nghttp2_session_callbacks_set_on_frame_send_callback");
  if (real == nullptr) return NGHTTP2_ERR_NOMEM;
  int rv = real(callbacks_ptr);
  if (rv == 0 && set_recv != nullptr && set_send != nullptr) {
    set_recv(*callbacks_ptr, on_frame_recv);
    set_send(*callbacks_ptr, on_frame_send);
  }
  return rv;
}

__attribute__((visibility("default"))) void nghttp2_session_callbacks_set_on_frame_recv_callback(
    nghttp2_session_callbacks* callbacks, nghttp2_on_frame_recv_callback callback) {
  static const auto real =
      next<SetFrameRecv>("nghttp2_session_callbacks_set_on_frame_recv_callback");
  program_frame_recv.store(callback, std::memory_order_relaxed);
  if (real != nullptr) real(callbacks, on_frame_recv);
}

__attribute__((visibility("default"))) void nghttp2_session_callbacks_set_on_frame_send_callback(
    nghttp2_session_callbacks* callbacks, nghttp2_on_frame_send_callback callback) {
  static const auto real =
      next<SetFrameSend>("nghttp2_session_callbacks_set_on_frame_send_callback");
  program_frame_send.store(callback, std::memory_order_relaxed);
  if (real != nullptr) real(callbacks, on_frame_send);
}

}  // extern "C"
