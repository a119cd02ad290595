#include "framework/core/device.h"

#include "framework/core/error.h"

#ifdef TESSERA_WITH_CUDA
#include <cuda_runtime.h>
#endif

namespace tessera {

Device Device::parse(std::string_view text) {
  if (text == "cpu") return cpu();
  if (text == "cuda") return cuda(0);
  if (text.starts_with("cuda:")) {
    const std::string index(text.substr(5));
    size_t used = 0;
    int n = -1;
    try {
      n = std::stoi(index, &used);
    } catch (const std::exception&) {
    }
    TESSERA_CHECK(n >= 0 && used == index.size(), "bad device '", text, "': expected cpu, cuda or cuda:N");
    return cuda(n);
  }
  detail::throw_error(detail::cat("bad device '", text, "': expected cpu, cuda or cuda:N"));
}

std::string Device::str() const { return is_cpu() ? "cpu" : "cuda:" + std::to_string(index); }

bool cuda_compiled() {
#ifdef TESSERA_WITH_CUDA
  return true;
#else
  return false;
#endif
}

int cuda_device_count() {
#ifdef TESSERA_WITH_CUDA
  static const int count = [] {
    int n = 0;
    if (cudaGetDeviceCount(&n) != cudaSuccess) {
      cudaGetLastError();  // clear the sticky "no driver" error
      return 0;
    }
    return n;
  }();
  return count;
#else
  return 0;
#endif
}

void require_device(Device device) {
  if (device.is_cpu()) return;
  TESSERA_CHECK(cuda_compiled(), "device ", device.str(),
                " requested, but this build of Tessera has no CUDA backend (rebuild with -DTESSERA_CUDA=ON)");
  const int n = cuda_device_count();
  TESSERA_CHECK(n > 0, "device ", device.str(), " requested, but no CUDA GPU is visible on this machine "
                "(no driver or no device); use --device cpu");
  TESSERA_CHECK(device.index < n, "device ", device.str(), " requested, but only ", n, " CUDA device(s) are visible");
}

}  // namespace tessera
