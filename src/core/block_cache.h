#pragma once

#include <cstddef>
#include <cstdlib>
#include <new>

namespace grelay {

// Blocks of one size, kept per thread for reuse: objects made and freed by the thousand per
// second on one worker (a Call per gRPC call) skip malloc. A block must be freed on the
// thread that took it. At most |max_cached| free blocks stay per thread; they go back to
// malloc when the thread ends.
template <size_t Size, size_t MaxCached>
class BlockCache {
  static_assert(Size >= sizeof(void*));

 public:
  static void* take() {
    Free& list = free_list();
    if (Node* node = list.head) {
      list.head = node->next;
      --list.count;
      return node;
    }
    void* p = std::malloc(Size);
    if (!p) throw std::bad_alloc();
    return p;
  }

  static void give(void* p) noexcept {
    if (!p) return;
    Free& list = free_list();
    if (list.count >= MaxCached) {
      std::free(p);
      return;
    }
    auto* node = static_cast<Node*>(p);
    node->next = list.head;
    list.head = node;
    ++list.count;
  }

  // Free blocks this thread keeps, for tests.
  static size_t cached() noexcept { return free_list().count; }

 private:
  struct Node {
    Node* next;
  };
  struct Free {
    Node* head = nullptr;
    size_t count = 0;
    ~Free() {
      while (Node* node = head) {
        head = node->next;
        std::free(node);
      }
    }
  };
  static Free& free_list() noexcept {
    static thread_local Free list;
    return list;
  }
};

}  // namespace grelay
