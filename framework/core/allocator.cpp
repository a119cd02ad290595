// Host side of allocator.h (the CUDA side is in cuda_allocator.cpp).
#include "framework/core/allocator.h"

#include <atomic>
#include <cstdlib>
#include <new>

#include "framework/core/error.h"

namespace tessera {
namespace {

constexpr size_t kHostAlignment = 64;

struct HostCounters {
  std::atomic<int64_t> in_use{0};
  std::atomic<int64_t> peak{0};
  std::atomic<int64_t> allocations{0};
};

HostCounters& host_counters() {
  static HostCounters counters;
  return counters;
}

}  // namespace

void* host_allocate(size_t bytes) {
  const size_t rounded = (bytes + kHostAlignment - 1) / kHostAlignment * kHostAlignment;
  void* ptr = std::aligned_alloc(kHostAlignment, rounded == 0 ? kHostAlignment : rounded);
  TESSERA_CHECK(ptr != nullptr, "host out of memory: could not allocate ", bytes, " bytes");
  auto& c = host_counters();
  const int64_t now = c.in_use.fetch_add(static_cast<int64_t>(bytes)) + static_cast<int64_t>(bytes);
  int64_t peak = c.peak.load();
  while (now > peak && !c.peak.compare_exchange_weak(peak, now)) {
  }
  c.allocations.fetch_add(1);
  return ptr;
}

void host_free(void* ptr, size_t bytes) {
  if (ptr == nullptr) return;
  std::free(ptr);
  host_counters().in_use.fetch_sub(static_cast<int64_t>(bytes));
}

AllocatorStats host_allocator_stats() {
  auto& c = host_counters();
  AllocatorStats s;
  s.bytes_in_use = c.in_use.load();
  s.peak_bytes_in_use = c.peak.load();
  s.bytes_reserved = s.bytes_in_use;
  s.allocations = c.allocations.load();
  s.system_allocations = s.allocations;
  return s;
}

#ifndef TESSERA_WITH_CUDA
void* cuda_allocate(size_t, int, void*) {
  detail::throw_error("CUDA memory requested, but this build of Tessera has no CUDA backend");
}
void cuda_free(void*) {}
void cuda_record_stream(void*, void*) {}
AllocatorStats cuda_allocator_stats(int) { return {}; }
void cuda_empty_cache() {}
void cuda_set_poison(bool) {}
void cuda_reset_peak_stats() {}
#endif

void reset_peak_stats() {
  host_counters().peak.store(host_counters().in_use.load());
  cuda_reset_peak_stats();
}

}  // namespace tessera
