// The distributed pieces on CUDA: flat packing and gradient unscaling against their CPU twins
// (outputs poisoned first), and the NCCL communicator, reducer and ZeRO-1 at world size 1 —
// still through NCCL. MPI starts in singleton mode (no launcher needed). The same MPI tests at
// any number of GPUs run through tests/gpu/extra_nccl.sh.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/amp/grad_scaler.h"
#include "framework/core/allocator.h"
#include "framework/core/cuda_context.h"
#include "framework/dist/ddp.h"
#include "framework/dist/flat.h"
#include "framework/dist/process_group.h"
#include "framework/dist/zero.h"
#include "framework/nn/layers.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "kernels/amp.h"

namespace tessera {
namespace {

class DistCudaTest : public ::testing::Test {
 protected:
  void SetUp() override {
    if (cuda_device_count() == 0) GTEST_SKIP() << "no CUDA device on this machine: GPU tests skipped";
    dist::ProcessGroupOptions options;
    options.timeout_s = 60;
    dist::ProcessGroup::init(options);
  }
  static dist::Communicator& nccl() { return dist::ProcessGroup::get().communicator(Device::cuda(0)); }
};

TEST_F(DistCudaTest, PackAndUnpackMatchTheCpuKernels) {
  for (DType tensor_dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (DType flat_dtype : {DType::f32, DType::bf16, DType::f16}) {
      Generator gen(5);
      // Sizes across chunk boundaries (8192) and odd offsets.
      const std::vector<int64_t> sizes = {1, 8191, 8193, 20000, 3};
      std::vector<Tensor> cpu_tensors, gpu_tensors;
      std::vector<kernels::FlatSegment> cpu_segments, gpu_segments;
      int64_t offset = 1;
      for (size_t i = 0; i < sizes.size(); ++i) {
        Tensor t = randn({sizes[i]}, 0, 3, tensor_dtype, Device::cpu(), &gen);
        cpu_tensors.push_back(t);
        gpu_tensors.push_back(t.to(Device::cuda(0)));
        const bool missing = i == 3;  // one tensor without data: zeros
        cpu_segments.push_back({missing ? nullptr : t.data_ptr(), sizes[i], offset});
        gpu_segments.push_back({missing ? nullptr : gpu_tensors.back().data_ptr(), sizes[i], offset});
        offset += sizes[i];
      }
      cuda_set_poison(true);
      Tensor cpu_flat = Tensor::full({offset}, 7.0, flat_dtype);
      Tensor gpu_flat = Tensor::empty({offset}, flat_dtype, Device::cuda(0));
      cuda_set_poison(false);
      copy_into(gpu_flat.slice(0, 0, 1), cpu_flat.slice(0, 0, 1));  // the one element no segment covers
      dist::pack_segments(tensor_dtype, cpu_segments, cpu_flat, 0.25);
      dist::pack_segments(tensor_dtype, gpu_segments, gpu_flat, 0.25);
      EXPECT_EQ(gpu_flat.to_vector<double>(), cpu_flat.to_vector<double>())
          << dtype_name(tensor_dtype) << " -> " << dtype_name(flat_dtype);
      dist::unpack_segments(cpu_flat, tensor_dtype, cpu_segments, 3.0);
      dist::unpack_segments(gpu_flat, tensor_dtype, gpu_segments, 3.0);
      for (size_t i = 0; i < sizes.size(); ++i)
        EXPECT_EQ(gpu_tensors[i].to_vector<double>(), cpu_tensors[i].to_vector<double>()) << "tensor " << i;
    }
  }
}

TEST_F(DistCudaTest, UnscaleCheckMatchesTheCpuKernel) {
  for (DType dtype : {DType::f32, DType::bf16, DType::f16}) {
    for (bool with_inf : {false, true}) {
      Generator gen(6);
      Tensor a = randn({30000}, 0, 100, dtype, Device::cpu(), &gen), b = randn({17}, 0, 100, dtype, Device::cpu(), &gen);
      if (with_inf) copy_into(a.slice(0, 12345, 12346), Tensor::full({1}, INFINITY, dtype));
      Tensor ga = a.to(Device::cuda(0)), gb = b.to(Device::cuda(0));
      float cpu_flag = 0.0f;
      Tensor gpu_flag = Tensor::zeros({1}, DType::f32, Device::cuda(0));
      void* cpu_data[2] = {a.data_ptr(), b.data_ptr()};
      void* gpu_data[2] = {ga.data_ptr(), gb.data_ptr()};
      const int64_t numels[2] = {30000, 17};
      kernels::unscale_check_cpu(dtype, cpu_data, numels, 2, 1.0 / 64, &cpu_flag);
#ifdef TESSERA_WITH_CUDA
      kernels::unscale_check_cuda(dtype, gpu_data, numels, 2, 1.0 / 64, gpu_flag.data<float>(),
                                  cuda::compute_stream(0));
#else
      ADD_FAILURE() << "built without CUDA";  // unreachable: the tests skip without a device
#endif
      EXPECT_EQ(gpu_flag.item(), cpu_flag);
      EXPECT_EQ(cpu_flag, with_inf ? 1.0f : 0.0f);
      EXPECT_EQ(ga.to_vector<double>(), a.to_vector<double>());
      EXPECT_EQ(gb.to_vector<double>(), b.to_vector<double>());
    }
  }
}

TEST_F(DistCudaTest, NcclCollectivesAtWorldSizeOne) {
  auto& c = nccl();
  EXPECT_STREQ(c.backend(), "nccl");
  Tensor t = Tensor::from_vector(std::vector<double>{1, 2, 3}, {3}, DType::bf16, Device::cuda(0));
  c.all_reduce(t, dist::ReduceOp::sum, true, "avg").wait();
  c.broadcast(t, 0, "bcast").wait();
  Tensor out = Tensor::zeros({3}, DType::bf16, Device::cuda(0));
  c.all_gather(out, t, "gather").wait();
  Tensor rs = Tensor::zeros({3}, DType::bf16, Device::cuda(0));
  c.reduce_scatter(rs, out, dist::ReduceOp::max, false, "scatter").wait();
  c.barrier("barrier").synchronize();
  EXPECT_EQ(rs.to_vector<double>(), (std::vector<double>{1, 2, 3}));
  EXPECT_EQ(c.stats().bytes(dist::CollectiveKind::all_reduce, DType::bf16) > 0, true);
}

TEST_F(DistCudaTest, ReducerAndZeroThroughNcclMatchPlainTraining) {
  auto& c = nccl();
  Generator g1(3), g2(3), g3(3);
  auto make = [](Generator* gen) {
    auto m = std::make_shared<nn::Sequential>();
    m->add(std::make_shared<nn::Linear>(6, 16, true, gen));
    m->add(std::make_shared<nn::Activation>("tanh"));
    m->add(std::make_shared<nn::Linear>(16, 2, true, gen));
    m->to(Device::cuda(0));
    return m;
  };
  auto plain = make(&g1), ddp = make(&g2), zero_model = make(&g3);
  optim::AdamWOptions o;
  o.lr = 1e-2;
  optim::AdamW plain_opt(plain->parameters(), o), ddp_opt(ddp->parameters(), o);
  dist::Reducer reducer(*ddp, c);
  dist::ZeroOptions zo;
  zo.lr = 1e-2;
  dist::ZeroAdamW zero(*zero_model, c, zo);
  Generator data(8);
  for (int step = 0; step < 5; ++step) {
    Tensor x = randn({8, 6}, 0, 1, DType::f32, Device::cuda(0), &data);
    Tensor y = randn({8, 2}, 0, 1, DType::f32, Device::cuda(0), &data);
    mse_loss(plain->forward(x), y).backward();
    plain_opt.step();
    plain_opt.zero_grad();
    mse_loss(ddp->forward(x), y).backward();
    reducer.finish();
    ddp_opt.step();
    ddp_opt.zero_grad();
    mse_loss(zero_model->forward(x), y).backward();
    zero.step();
    zero.zero_grad();
  }
  const auto p = plain->parameters(), d = ddp->parameters(), z = zero_model->parameters();
  for (size_t i = 0; i < p.size(); ++i) {
    EXPECT_EQ(d[i].to_vector<float>(), p[i].to_vector<float>()) << "DDP, parameter " << i;
    const auto zv = z[i].to_vector<float>(), pv = p[i].to_vector<float>();
    for (size_t k = 0; k < pv.size(); ++k) EXPECT_NEAR(zv[k], pv[k], 1e-6 + 1e-6 * std::fabs(pv[k]));
  }
}

TEST_F(DistCudaTest, GradScalerFlagTravelsThroughNccl) {
  auto& c = nccl();
  amp::GradScaler scaler(amp::GradScalerOptions{}, dist::max_flag_reducer(c));
  Tensor p = Tensor::zeros({4}, DType::f16, Device::cuda(0));
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(std::vector<double>{1, INFINITY, 2, 3}, {4}, DType::f16, Device::cuda(0)));
  EXPECT_TRUE(scaler.unscale({p}));
  scaler.update(true);
  EXPECT_EQ(scaler.loss_scale(), 32768.0);
}

}  // namespace
}  // namespace tessera
