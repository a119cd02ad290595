// Memory for tensors: an aligned host allocator and a stream-ordered caching CUDA allocator.
//
// defines: tessera::AllocatorStats, host_allocate, host_free, host_allocator_stats,
//          cuda_allocate, cuda_free, cuda_record_stream, cuda_allocator_stats,
//          cuda_empty_cache, reset_peak_stats
//
// Host memory is 64-byte aligned (one cache line, wide enough for AVX-512 loads).
//
// The CUDA allocator never returns memory to the driver during training: a freed block goes
// back to the pool of the stream it was allocated on and is handed out again to the next
// request of a similar size on that stream. Work queued on one stream runs in order, so the
// block can be reused at once without a synchronisation; this is what "stream-ordered" means.
// A block used on another stream too must be announced with `cuda_record_stream`; it is then
// reused only after an event recorded on that stream at free time has completed. Because the
// same sequence of requests gets the same addresses step after step, a training step can be
// captured as a CUDA graph. Requests are rounded (512 B below 1 MiB, 2 MiB above) and a cached
// block serves a request at most twice its size. When cudaMalloc fails, the free cache is
// released and the request retried once; then the error reports what is in use and cached.
#pragma once

#include <cstddef>
#include <cstdint>

namespace tessera {

struct AllocatorStats {
  int64_t bytes_in_use = 0;       // handed out to tensors now (rounded sizes)
  int64_t peak_bytes_in_use = 0;  // highest bytes_in_use since start or the last reset
  int64_t bytes_cached = 0;       // held by the allocator but free for reuse
  int64_t bytes_reserved = 0;     // in use + cached: what the allocator holds from the system
  int64_t allocations = 0;        // requests served
  int64_t system_allocations = 0; // requests that went to malloc/cudaMalloc
};

void* host_allocate(size_t bytes);
void host_free(void* ptr, size_t bytes);
AllocatorStats host_allocator_stats();

// `stream` is a cudaStream_t (nullptr = legacy default stream). Throws tessera::Error when
// built without CUDA.
void* cuda_allocate(size_t bytes, int device, void* stream);
void cuda_free(void* ptr);
void cuda_record_stream(void* ptr, void* stream);
AllocatorStats cuda_allocator_stats(int device);
// Tests: when on, every CUDA block handed out is first filled with 0xFF bytes (NaN in every
// floating dtype), so an element a kernel forgets to write shows up as NaN.
void cuda_set_poison(bool on);
// Returns every cached, idle block to the driver.
void cuda_empty_cache();
void cuda_reset_peak_stats();
// Sets the peak of every allocator (host and CUDA) to what is in use now.
void reset_peak_stats();

}  // namespace tessera
