// The fused optimizer and clipping kernels on CUDA against their CPU twins: identical
// parameters and gradients on both devices, a few steps, then parameters and optimizer state
// compared. Covers multi-chunk tensors, a misaligned (offset) parameter, an empty one, a
// parameter skipped for lack of a gradient, and more tensors than one launch holds. Every
// CUDA allocation is poisoned (NaN). Skips with a message on machines without a CUDA device.
#include <gtest/gtest.h>

#include <functional>

#include "framework/core/allocator.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/rmsprop.h"
#include "framework/optim/sgd.h"
#include "kernels/optim.h"
#include "tests/common/op_table.h"

namespace tessera::optim {
namespace {

using testing::relative_error;
using MakeOptimizer = std::function<std::unique_ptr<Optimizer>(std::vector<Tensor>)>;

class CudaOptimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU tests skipped";
    cuda_set_poison(true);
  }
  void TearDown() override { cuda_set_poison(false); }
};

// Parameters of these shapes on `device`; the second one sits one element into its storage,
// so its buffers are not 16-byte aligned.
std::vector<Tensor> make_params(const std::vector<Shape>& shapes, DType dtype, Device device, uint64_t seed) {
  Generator gen(seed);
  std::vector<Tensor> params;
  for (size_t k = 0; k < shapes.size(); ++k) {
    Tensor p;
    if (k == 1) {
      const Tensor base = randn({shape_numel(shapes[k]) + 1}, 0, 1, dtype, device, &gen);
      p = base.slice(0, 1, shape_numel(shapes[k]) + 1).reshape(shapes[k]);
    } else {
      p = randn(shapes[k], 0, 1, dtype, device, &gen);
    }
    p.set_requires_grad(true);
    params.push_back(p);
  }
  return params;
}

// Runs `steps` steps on both devices with the same gradients and compares everything.
void compare_devices(const std::string& name, const MakeOptimizer& make, DType dtype, const std::vector<Shape>& shapes,
                     int steps = 3) {
  std::vector<Tensor> cpu = make_params(shapes, dtype, Device::cpu(), 7);
  std::vector<Tensor> gpu = make_params(shapes, dtype, Device::cuda(0), 7);
  auto cpu_opt = make(cpu);
  auto gpu_opt = make(gpu);
  Generator gen(99);
  for (int step = 1; step <= steps; ++step) {
    for (size_t k = 0; k < cpu.size(); ++k) {
      if (k == 2 && step == 2) {  // parameter 2 has no gradient on step 2
        cpu[k].zero_grad();
        gpu[k].zero_grad();
        continue;
      }
      const Tensor g = randn(cpu[k].shape(), 0, 1, dtype, Device::cpu(), &gen);
      cpu[k].set_grad(g);
      gpu[k].set_grad(g.to(Device::cuda(0)));
    }
    cpu_opt->step();
    gpu_opt->step();
  }
  const double tolerance = dtype == DType::f64 ? 1e-12 : dtype == DType::f32 ? 1e-5 : 1e-2;
  for (size_t k = 0; k < cpu.size(); ++k)
    if (cpu[k].numel() > 0)
      EXPECT_LE(relative_error(gpu[k], cpu[k]), tolerance) << name << " " << dtype_name(dtype) << " parameter " << k;
  const auto cpu_state = cpu_opt->state_dict(), gpu_state = gpu_opt->state_dict();
  ASSERT_EQ(cpu_state.size(), gpu_state.size());
  for (size_t i = 0; i < cpu_state.size(); ++i) {
    EXPECT_EQ(cpu_state[i].first, gpu_state[i].first);
    if (cpu_state[i].second.numel() > 0)
      EXPECT_LE(relative_error(gpu_state[i].second, cpu_state[i].second), tolerance)
          << name << " " << dtype_name(dtype) << " " << cpu_state[i].first;
  }
}

std::vector<std::pair<std::string, MakeOptimizer>> optimizers() {
  return {
      {"SGD", [](std::vector<Tensor> p) { return std::make_unique<SGD>(std::move(p), SgdOptions{.lr = 0.1}); }},
      {"SGD nesterov",
       [](std::vector<Tensor> p) {
         return std::make_unique<SGD>(std::move(p), SgdOptions{.lr = 0.1, .momentum = 0.9, .weight_decay = 0.01,
                                                               .nesterov = true});
       }},
      {"Adam", [](std::vector<Tensor> p) { return std::make_unique<Adam>(std::move(p), AdamOptions{.lr = 0.01, .weight_decay = 0.1}); }},
      {"AdamW", [](std::vector<Tensor> p) { return std::make_unique<AdamW>(std::move(p), AdamWOptions{.lr = 0.01}); }},
      {"RMSprop centered",
       [](std::vector<Tensor> p) {
         return std::make_unique<RMSprop>(std::move(p), RmspropOptions{.lr = 0.01, .weight_decay = 0.1, .momentum = 0.5,
                                                                       .centered = true});
       }},
  };
}

TEST_F(CudaOptimTest, FusedUpdatesMatchCpu) {
  const std::vector<Shape> shapes = {{40000}, {37, 3}, {5, 7}, {0, 4}, {1}};
  for (const auto& [name, make] : optimizers())
    for (DType dtype : {DType::f32, DType::bf16, DType::f64}) compare_devices(name, make, dtype, shapes);
}

TEST_F(CudaOptimTest, MoreTensorsThanOneLaunchHolds) {
  std::vector<Shape> shapes;
  for (int k = 0; k < 2 * kernels::kMaxTensorsPerLaunch + 17; ++k) shapes.push_back({3 + k % 50});
  compare_devices("AdamW", optimizers()[3].second, DType::f32, shapes, 2);
}

TEST_F(CudaOptimTest, ClipGradNormMatchesCpu) {
  Generator gen(3);
  std::vector<Tensor> cpu, gpu;
  auto add = [&](const Shape& shape, DType dtype) {
    const Tensor g = randn(shape, 0, 1, dtype, Device::cpu(), &gen);
    Tensor pc = Tensor::zeros(shape, dtype), pg = Tensor::zeros(shape, dtype, Device::cuda(0));
    pc.set_requires_grad(true);
    pg.set_requires_grad(true);
    pc.set_grad(g);
    pg.set_grad(g.to(Device::cuda(0)));
    cpu.push_back(pc);
    gpu.push_back(pg);
  };
  add({100000}, DType::f32);
  add({333, 17}, DType::bf16);
  add({0}, DType::f32);
  for (int k = 0; k < 2 * kernels::kMaxTensorsPerLaunch + 5; ++k) add({1 + k % 9}, DType::f32);
  add({4097}, DType::f64);
  const Tensor cpu_norm = clip_grad_norm(cpu, 2.0);
  const Tensor gpu_norm = clip_grad_norm(gpu, 2.0);
  EXPECT_EQ(gpu_norm.device(), Device::cuda(0));
  EXPECT_NEAR(gpu_norm.item(), cpu_norm.item(), 1e-6 * cpu_norm.item());
  for (size_t k = 0; k < cpu.size(); ++k)
    if (cpu[k].numel() > 0)
      EXPECT_LE(relative_error(gpu[k].grad(), cpu[k].grad()), cpu[k].dtype() == DType::bf16 ? 1e-2 : 1e-6) << k;
}

}  // namespace
}  // namespace tessera::optim
