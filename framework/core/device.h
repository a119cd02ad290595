// Devices: `cpu` and `cuda:N`, and what this build and machine can run.
//
// defines: tessera::Device, DeviceType, cuda_compiled, cuda_device_count, require_device
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace tessera {

enum class DeviceType : uint8_t { cpu, cuda };

struct Device {
  DeviceType type = DeviceType::cpu;
  int index = 0;

  static Device cpu() { return {}; }
  static Device cuda(int index = 0) { return {DeviceType::cuda, index}; }
  // "cpu", "cuda", "cuda:1"; anything else is an error.
  static Device parse(std::string_view text);

  bool is_cpu() const { return type == DeviceType::cpu; }
  bool is_cuda() const { return type == DeviceType::cuda; }
  std::string str() const;
  bool operator==(const Device&) const = default;
};

// True when this binary was built with the CUDA backend.
bool cuda_compiled();
// Number of usable CUDA devices: 0 without the CUDA backend, without a GPU or without a driver.
int cuda_device_count();
// Throws a clear error when `device` cannot be used here (no CUDA build, no GPU, bad index).
void require_device(Device device);

}  // namespace tessera
