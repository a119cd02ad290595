#include "framework/core/cuda_context.h"

#include "framework/core/error.h"

#ifdef TESSERA_WITH_CUDA
#include <array>
#include <mutex>

#include "framework/core/cuda_check.h"
#endif

namespace tessera::cuda {

#ifdef TESSERA_WITH_CUDA
namespace {
constexpr int kMaxDevices = 64;

std::array<cudaStream_t, kMaxDevices>& shared_streams() {
  static std::array<cudaStream_t, kMaxDevices> streams{};
  return streams;
}

thread_local std::array<cudaStream_t, kMaxDevices> thread_streams{};
std::mutex stream_mutex;
}  // namespace

void* compute_stream(int device) {
  TESSERA_ASSERT(device >= 0 && device < kMaxDevices);
  if (thread_streams[device] != nullptr) return thread_streams[device];
  std::lock_guard<std::mutex> lock(stream_mutex);
  auto& stream = shared_streams()[device];
  if (stream == nullptr) {
    int previous = 0;
    TESSERA_CUDA_CHECK(cudaGetDevice(&previous));
    TESSERA_CUDA_CHECK(cudaSetDevice(device));
    TESSERA_CUDA_CHECK(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
    TESSERA_CUDA_CHECK(cudaSetDevice(previous));
  }
  return stream;
}

void set_device(int device) { TESSERA_CUDA_CHECK(cudaSetDevice(device)); }

void synchronize(int device) {
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(static_cast<cudaStream_t>(compute_stream(device))));
}

StreamGuard::StreamGuard(int device, void* stream) : device_(device), previous_(thread_streams[device]) {
  thread_streams[device] = static_cast<cudaStream_t>(stream);
}

StreamGuard::~StreamGuard() { thread_streams[device_] = static_cast<cudaStream_t>(previous_); }

#else

void* compute_stream(int) { detail::throw_error("CUDA stream requested, but this build has no CUDA backend"); }
void set_device(int) { detail::throw_error("CUDA device requested, but this build has no CUDA backend"); }
void synchronize(int) {}
StreamGuard::StreamGuard(int device, void* stream) : device_(device), previous_(stream) {}
StreamGuard::~StreamGuard() = default;

#endif

}  // namespace tessera::cuda
