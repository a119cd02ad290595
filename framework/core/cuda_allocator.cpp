// The CUDA side of allocator.h: a stream-ordered caching allocator (the life cycle of a block
// is described at the top of allocator.h).
#ifdef TESSERA_WITH_CUDA

#include <cublas_api.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <unordered_map>
#include <vector>

#include "framework/core/allocator.h"
#include "framework/core/cuda_check.h"

namespace tessera {
namespace detail {

void throw_library_error(const char* library, const char* file, int line, const char* statement, int code,
                         const char* text) {
  throw Error(cat(library, " error ", code, " (", text ? text : "unknown", ") at ", file, ":", line, " in `",
                  statement, "`"));
}

const char* cublas_status_text(int status) { return cublasGetStatusString(static_cast<cublasStatus_t>(status)); }

}  // namespace detail

namespace {

constexpr size_t kSmallLimit = 1 << 20;
constexpr size_t kSmallRound = 512;
constexpr size_t kLargeRound = 2 << 20;

size_t round_size(size_t bytes) {
  if (bytes == 0) bytes = 1;
  const size_t unit = bytes <= kSmallLimit ? kSmallRound : kLargeRound;
  return (bytes + unit - 1) / unit * unit;
}

struct Block {
  void* ptr = nullptr;
  size_t size = 0;
  int device = 0;
  cudaStream_t stream = nullptr;
  std::vector<cudaStream_t> used_on;  // other streams that touched it (cuda_record_stream)
  std::vector<cudaEvent_t> pending;   // events that must complete before reuse
};

struct BlockOrder {  // free blocks ordered by (stream, size, address) for best-fit lookup
  bool operator()(const Block* a, const Block* b) const {
    if (a->stream != b->stream) return a->stream < b->stream;
    if (a->size != b->size) return a->size < b->size;
    return a->ptr < b->ptr;
  }
};

class DeviceCache {
 public:
  explicit DeviceCache(int device) : device_(device) {}

  void* allocate(size_t requested, cudaStream_t stream) {
    const size_t size = round_size(requested);
    process_pending();
    Block key;
    key.stream = stream;
    key.size = size;
    auto it = free_.lower_bound(&key);
    Block* block = nullptr;
    if (it != free_.end() && (*it)->stream == stream && (*it)->size <= 2 * size) {
      block = *it;
      free_.erase(it);
      stats_.bytes_cached -= static_cast<int64_t>(block->size);
    } else {
      block = new Block;
      block->size = size;
      block->device = device_;
      block->stream = stream;
      block->ptr = system_allocate(size);
      stats_.bytes_reserved += static_cast<int64_t>(size);
      ++stats_.system_allocations;
    }
    stats_.bytes_in_use += static_cast<int64_t>(block->size);
    stats_.peak_bytes_in_use = std::max(stats_.peak_bytes_in_use, stats_.bytes_in_use);
    ++stats_.allocations;
    live_[block->ptr] = block;
    return block->ptr;
  }

  void free(Block* block) {
    stats_.bytes_in_use -= static_cast<int64_t>(block->size);
    if (block->used_on.empty()) {
      to_free_list(block);
      return;
    }
    for (cudaStream_t s : block->used_on) {
      cudaEvent_t event;
      TESSERA_CUDA_CHECK(cudaEventCreateWithFlags(&event, cudaEventDisableTiming));
      TESSERA_CUDA_CHECK(cudaEventRecord(event, s));
      block->pending.push_back(event);
    }
    block->used_on.clear();
    pending_.push_back(block);
  }

  void empty_cache() {
    for (Block* block : free_) {
      cudaFree(block->ptr);
      stats_.bytes_reserved -= static_cast<int64_t>(block->size);
      stats_.bytes_cached -= static_cast<int64_t>(block->size);
      delete block;
    }
    free_.clear();
  }

  std::unordered_map<void*, Block*> live_;
  AllocatorStats stats_;

 private:
  void* system_allocate(size_t size) {
    void* ptr = nullptr;
    TESSERA_CUDA_CHECK(cudaSetDevice(device_));
    cudaError_t status = cudaMalloc(&ptr, size);
    if (status == cudaErrorMemoryAllocation) {
      cudaGetLastError();
      TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
      process_pending();
      empty_cache();
      status = cudaMalloc(&ptr, size);
    }
    if (status != cudaSuccess) {
      cudaGetLastError();
      detail::throw_error(detail::cat("CUDA out of memory on cuda:", device_, ": tried to allocate ", size,
                                      " bytes; ", stats_.bytes_in_use, " bytes in use, ", stats_.bytes_cached,
                                      " cached (", cudaGetErrorString(status), ")"));
    }
    return ptr;
  }

  void to_free_list(Block* block) {
    stats_.bytes_cached += static_cast<int64_t>(block->size);
    free_.insert(block);
  }

  void process_pending() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      Block* block = *it;
      bool done = true;
      for (cudaEvent_t e : block->pending) {
        const cudaError_t q = cudaEventQuery(e);
        if (q == cudaErrorNotReady) {
          cudaGetLastError();
          done = false;
          break;
        }
        TESSERA_CUDA_CHECK(q);
      }
      if (!done) {
        ++it;
        continue;
      }
      for (cudaEvent_t e : block->pending) cudaEventDestroy(e);
      block->pending.clear();
      to_free_list(block);
      it = pending_.erase(it);
    }
  }

  int device_;
  std::set<Block*, BlockOrder> free_;
  std::vector<Block*> pending_;
};

constexpr int kMaxDevices = 64;
std::mutex cache_mutex;
bool poison_allocations = false;
std::unordered_map<void*, int>& owner_device() {  // live pointer -> device whose cache owns it
  static auto* owners = new std::unordered_map<void*, int>;
  return *owners;
}

DeviceCache& cache(int device) {
  static DeviceCache* caches[kMaxDevices] = {};
  TESSERA_ASSERT(device >= 0 && device < kMaxDevices, "device index ", device);
  if (caches[device] == nullptr) caches[device] = new DeviceCache(device);  // lives until exit
  return *caches[device];
}

}  // namespace

void* cuda_allocate(size_t bytes, int device, void* stream) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  void* ptr = cache(device).allocate(bytes, static_cast<cudaStream_t>(stream));
  owner_device()[ptr] = device;
  if (poison_allocations) TESSERA_CUDA_CHECK(cudaMemsetAsync(ptr, 0xff, bytes, static_cast<cudaStream_t>(stream)));
  return ptr;
}

void cuda_free(void* ptr) {
  if (ptr == nullptr) return;
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto owner = owner_device().find(ptr);
  TESSERA_ASSERT(owner != owner_device().end(), "cuda_free of a pointer the allocator does not own");
  DeviceCache& c = cache(owner->second);
  owner_device().erase(owner);
  auto it = c.live_.find(ptr);
  Block* block = it->second;
  c.live_.erase(it);
  c.free(block);
}

void cuda_record_stream(void* ptr, void* stream) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  auto owner = owner_device().find(ptr);
  TESSERA_ASSERT(owner != owner_device().end(), "cuda_record_stream of a pointer the allocator does not own");
  Block* block = cache(owner->second).live_.at(ptr);
  auto s = static_cast<cudaStream_t>(stream);
  if (s != block->stream && std::find(block->used_on.begin(), block->used_on.end(), s) == block->used_on.end())
    block->used_on.push_back(s);
}

void cuda_set_poison(bool on) { poison_allocations = on; }

AllocatorStats cuda_allocator_stats(int device) {
  std::lock_guard<std::mutex> lock(cache_mutex);
  return cache(device).stats_;
}

void cuda_empty_cache() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (int d = 0; d < kMaxDevices; ++d) cache(d).empty_cache();
}

void cuda_reset_peak_stats() {
  std::lock_guard<std::mutex> lock(cache_mutex);
  for (int d = 0; d < kMaxDevices; ++d) cache(d).stats_.peak_bytes_in_use = cache(d).stats_.bytes_in_use;
}

}  // namespace tessera
#endif
