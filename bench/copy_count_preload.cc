// copy_count_preload.so: an LD_PRELOAD library that counts the bytes a process copies with
// memcpy, memmove and mempcpy (and their _chk forms), for bench.py's counting pass.
//
//   GRELAY_COPY_COUNT_DIR=DIR LD_PRELOAD=.../copy_count_preload.so program ...
//
// Each process writes its counters straight into DIR/copies.PID (a shared mapping, so they
// can be read while it runs, before and after a measured load; a forked child gets a file
// of its own). The file: a 64-byte header, then `slot_count` slots of 8 little-endian
// uint64: copy calls, copy bytes, copy calls of at least `big_copy` bytes, their bytes,
// then the same four for memmove. Each thread takes a slot of its own, so counting is a
// plain add on a cache line no other thread writes; threads beyond the last slot share it
// with atomic adds. Without GRELAY_COPY_COUNT_DIR nothing is written.
//
// What it cannot see: copies the compiler inlined (small fixed sizes), copies inside libc
// that do not go through its PLT, and the kernel's copies (those are the syscalls' bytes).
// A program that links nghttp2 statically still calls libc's memcpy through its PLT.

#undef _FORTIFY_SOURCE

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <sys/mman.h>
#include <unistd.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>

namespace {

constexpr uint64_t file_magic = 0x31796f70636c6572;  // "relcopy1", little-endian.
constexpr size_t slot_count = 64;
// Copies of a gRPC payload chunk or more; smaller ones are headers, frame headers, state.
constexpr size_t big_copy = 1024;

enum Counter : size_t {
  copy_calls,
  copy_bytes,
  copy_big_calls,
  copy_big_bytes,
  move_calls,
  move_bytes,
  move_big_calls,
  move_big_bytes,
  counter_count,
};

struct alignas(64) Slot {
  uint64_t counters[counter_count];
};

struct alignas(64) Header {
  uint64_t magic;
  uint64_t pid;
  uint32_t slots_taken;  // Written with atomic adds.
};

struct CountFile {
  Header header;
  Slot slots[slot_count];
};

static_assert(sizeof(Header) == 64 && sizeof(Slot) == 64);

using CopyFunction = void* (*)(void*, const void*, size_t);

// Resolved from libc with dlsym(RTLD_NEXT); until then copies take the slow paths below.
CopyFunction real_memcpy = nullptr;
CopyFunction real_memmove = nullptr;
CopyFunction real_mempcpy = nullptr;

std::atomic<CountFile*> count_file{nullptr};
// Where copies count before the file exists (start-up) or without a directory: never read.
Slot startup_slot;
__thread Slot* thread_slot __attribute__((tls_model("initial-exec"))) = nullptr;
__thread bool resolving __attribute__((tls_model("initial-exec"))) = false;

// Byte loops through volatile pointers, which the compiler cannot turn into a memcpy call:
// only used while dlsym itself copies, before the real functions are known.
void* slow_copy(void* destination, const void* source, size_t length) noexcept {
  auto* to = static_cast<volatile unsigned char*>(destination);
  auto* from = static_cast<const volatile unsigned char*>(source);
  if (to < from) {
    for (size_t i = 0; i < length; ++i)
      to[i] = from[i];
  } else {
    for (size_t i = length; i > 0; --i)
      to[i - 1] = from[i - 1];
  }
  return destination;
}

void resolve() noexcept {
  if (resolving) return;
  resolving = true;
  real_memmove = reinterpret_cast<CopyFunction>(dlsym(RTLD_NEXT, "memmove"));
  real_memcpy = reinterpret_cast<CopyFunction>(dlsym(RTLD_NEXT, "memcpy"));
  real_mempcpy = reinterpret_cast<CopyFunction>(dlsym(RTLD_NEXT, "mempcpy"));
  resolving = false;
}

// Maps DIR/copies.PID for the calling process; every thread takes a new slot in it.
void open_count_file() noexcept {
  thread_slot = nullptr;
  count_file.store(nullptr, std::memory_order_release);
  const char* directory = std::getenv("GRELAY_COPY_COUNT_DIR");
  if (directory == nullptr || *directory == '\0') return;
  char path[4096];
  std::snprintf(path, sizeof(path), "%s/copies.%ld", directory, static_cast<long>(getpid()));
  int fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  void* mapping = MAP_FAILED;
  if (ftruncate(fd, sizeof(CountFile)) == 0) {
    mapping = mmap(nullptr, sizeof(CountFile), PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  }
  close(fd);
  if (mapping == MAP_FAILED) return;
  // A fresh file reads as zeros; only the header needs writing.
  auto* file = static_cast<CountFile*>(mapping);
  file->header.pid = static_cast<uint64_t>(getpid());
  file->header.magic = file_magic;
  count_file.store(file, std::memory_order_release);
}

Slot* claim_slot() noexcept {
  CountFile* file = count_file.load(std::memory_order_acquire);
  if (file == nullptr) return &startup_slot;  // Not kept: the file may come later.
  uint32_t index = __atomic_fetch_add(&file->header.slots_taken, 1, __ATOMIC_RELAXED);
  thread_slot = &file->slots[index < slot_count ? index : slot_count - 1];
  return thread_slot;
}

inline void count(Counter calls, size_t length) noexcept {
  Slot* slot = thread_slot;
  if (__builtin_expect(slot == nullptr, 0)) slot = claim_slot();
  CountFile* file = count_file.load(std::memory_order_relaxed);
  uint64_t* counters = slot->counters;
  bool big = length >= big_copy;
  if (__builtin_expect(file != nullptr && slot == &file->slots[slot_count - 1], 0)) {
    // The overflow slot is shared by the threads that came too late for one of their own.
    __atomic_fetch_add(&counters[calls], 1, __ATOMIC_RELAXED);
    __atomic_fetch_add(&counters[calls + 1], length, __ATOMIC_RELAXED);
    if (big) {
      __atomic_fetch_add(&counters[calls + 2], 1, __ATOMIC_RELAXED);
      __atomic_fetch_add(&counters[calls + 3], length, __ATOMIC_RELAXED);
    }
    return;
  }
  counters[calls] += 1;
  counters[calls + 1] += length;
  if (big) {
    counters[calls + 2] += 1;
    counters[calls + 3] += length;
  }
}

void on_fork_child() noexcept {
  open_count_file();
}

__attribute__((constructor(101))) void start() noexcept {
  resolve();
  open_count_file();
  pthread_atfork(nullptr, nullptr, on_fork_child);
}

}  // namespace

extern "C" {

__attribute__((visibility("default"))) void* memcpy(void* destination, const void* source,
                                                    size_t length) noexcept {
  count(copy_calls, length);
  if (__builtin_expect(real_memcpy == nullptr, 0)) resolve();
  if (real_memcpy == nullptr) return slow_copy(destination, source, length);
  return real_memcpy(destination, source, length);
}

__attribute__((visibility("default"))) void* memmove(void* destination, const void* source,
                                                     size_t length) noexcept {
  count(move_calls, length);
  if (__builtin_expect(real_memmove == nullptr, 0)) resolve();
  if (real_memmove == nullptr) return slow_copy(destination, source, length);
  return real_memmove(destination, source, length);
}

__attribute__((visibility("default"))) void* mempcpy(void* destination, const void* source,
                                                     size_t length) noexcept {
  count(copy_calls, length);
  if (__builtin_expect(real_mempcpy == nullptr, 0)) resolve();
  if (real_mempcpy == nullptr) {
    return static_cast<unsigned char*>(slow_copy(destination, source, length)) + length;
  }
  return real_mempcpy(destination, source, length);
}

// The _FORTIFY_SOURCE forms: check as libc does, then copy through the counted functions.
__attribute__((visibility("default"))) void* __memcpy_chk(void* destination, const void* source,
                                                          size_t length,
                                                          size_t destination_length) noexcept {
  if (length > destination_length) abort();
  return memcpy(destination, source, length);
}

__attribute__((visibility("default"))) void* __memmove_chk(void* destination, const void* source,
                                                           size_t length,
                                                           size_t destination_length) noexcept {
  if (length > destination_length) abort();
  return memmove(destination, source, length);
}

__attribute__((visibility("default"))) void* __mempcpy_chk(void* destination, const void* source,
                                                           size_t length,
                                                           size_t destination_length) noexcept {
  if (length > destination_length) abort();
  return mempcpy(destination, source, length);
}

}  // extern "C"
