// Per-device CUDA state that the rest of Tessera shares: the compute stream and device selection.
//
// defines: tessera::cuda::compute_stream, set_compute_stream, StreamGuard, set_device, synchronize
//
// Every tensor operation on `cuda:N` is queued on N's compute stream (a non-blocking stream
// created on first use, one per device, shared by all threads unless a StreamGuard swaps it for
// the calling thread). The data-parallel reducer uses its own communication stream and orders
// it against this one with events. Streams are passed around as `void*` (a cudaStream_t) so
// that headers need no CUDA include. Without the CUDA backend these functions throw.
#pragma once

namespace tessera::cuda {

void* compute_stream(int device);
void set_device(int device);
void synchronize(int device);  // waits for the compute stream of `device`

// Makes `stream` the calling thread's compute stream for `device` until destruction.
class StreamGuard {
 public:
  StreamGuard(int device, void* stream);
  ~StreamGuard();
  StreamGuard(const StreamGuard&) = delete;
  StreamGuard& operator=(const StreamGuard&) = delete;

 private:
  int device_;
  void* previous_;
};

}  // namespace tessera::cuda
