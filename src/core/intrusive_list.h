#pragma once

#include <cstddef>

namespace grelay {

// Links an object into one IntrusiveList<T>. T derives from ListHook<T>.
template <typename T>
class ListHook {
 private:
  template <typename>
  friend class IntrusiveList;
  T* prev_ = nullptr;
  T* next_ = nullptr;
  bool linked_ = false;
};

// A doubly linked list of objects it does not own: O(1) insert and erase, no allocation.
template <typename T>
class IntrusiveList {
 public:
  IntrusiveList() = default;
  IntrusiveList(const IntrusiveList&) = delete;
  IntrusiveList& operator=(const IntrusiveList&) = delete;

  bool empty() const noexcept { return head_ == nullptr; }
  size_t size() const noexcept { return size_; }
  T* front() const noexcept { return head_; }
  static bool linked(const T& item) noexcept { return hook(item).linked_; }
  static T* next(const T& item) noexcept { return hook(item).next_; }

  void push_front(T& item) noexcept {
    ListHook<T>& h = hook(item);
    if (h.linked_) return;
    h.linked_ = true;
    h.prev_ = nullptr;
    h.next_ = head_;
    if (head_)
      hook(*head_).prev_ = &item;
    else
      tail_ = &item;
    head_ = &item;
    ++size_;
  }

  void push_back(T& item) noexcept {
    ListHook<T>& h = hook(item);
    if (h.linked_) return;
    h.linked_ = true;
    h.next_ = nullptr;
    h.prev_ = tail_;
    if (tail_)
      hook(*tail_).next_ = &item;
    else
      head_ = &item;
    tail_ = &item;
    ++size_;
  }

  void erase(T& item) noexcept {
    ListHook<T>& h = hook(item);
    if (!h.linked_) return;
    if (h.prev_)
      hook(*h.prev_).next_ = h.next_;
    else
      head_ = h.next_;
    if (h.next_)
      hook(*h.next_).prev_ = h.prev_;
    else
      tail_ = h.prev_;
    h.prev_ = h.next_ = nullptr;
    h.linked_ = false;
    --size_;
  }

  // Unlinks and returns the first item, or nullptr.
  T* pop_front() noexcept {
    T* item = head_;
    if (item) erase(*item);
    return item;
  }

 private:
  static ListHook<T>& hook(T& item) noexcept { return static_cast<ListHook<T>&>(item); }
  static const ListHook<T>& hook(const T& item) noexcept {
    return static_cast<const ListHook<T>&>(item);
  }

  T* head_ = nullptr;
  T* tail_ = nullptr;
  size_t size_ = 0;
};

}  // namespace grelay
