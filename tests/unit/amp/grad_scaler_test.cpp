// Dynamic loss scaling on one process (the cross-rank flag reduction is tests/mpi).
#include <gtest/gtest.h>

#include <cmath>

#include "framework/amp/grad_scaler.h"
#include "framework/optim/sgd.h"
#include "kernels/amp.h"

namespace tessera::amp {
namespace {

Tensor param_with_grad(const std::vector<double>& grad, DType dtype = DType::f32) {
  Tensor p = Tensor::zeros({static_cast<int64_t>(grad.size())}, dtype);
  p.set_requires_grad(true);
  p.set_grad(Tensor::from_vector(grad, {static_cast<int64_t>(grad.size())}, dtype));
  return p;
}

TEST(GradScalerTest, UnscaleDividesGradientsInPlace) {
  GradScalerOptions o;
  o.init_scale = 8.0;
  GradScaler scaler(o);
  Tensor p = param_with_grad({8, -16, 0.5}), q = param_with_grad({4, 2}, DType::bf16);
  EXPECT_FALSE(scaler.unscale({p, q}));
  EXPECT_EQ(p.grad().to_vector<double>(), (std::vector<double>{1, -2, 0.0625}));
  EXPECT_EQ(q.grad().to_vector<double>(), (std::vector<double>{0.5, 0.25}));
}

TEST(GradScalerTest, InfinityOrNanAnywhereIsFound) {
  for (double bad : {INFINITY, -INFINITY, NAN}) {
    GradScaler scaler;
    Tensor ok = param_with_grad({1, 2}), broken = param_with_grad({3, bad, 4}, DType::f16);
    EXPECT_TRUE(scaler.unscale({ok, broken})) << bad;
  }
}

TEST(GradScalerTest, ScaleHalvesOnOverflowAndDoublesAfterTheGrowthInterval) {
  GradScalerOptions o;
  o.init_scale = 1024;
  o.growth_interval = 3;
  GradScaler scaler(o);
  scaler.update(true);
  EXPECT_EQ(scaler.loss_scale(), 512);
  EXPECT_EQ(scaler.skipped_steps(), 1);
  scaler.update(false);
  scaler.update(false);
  EXPECT_EQ(scaler.loss_scale(), 512);
  scaler.update(false);
  EXPECT_EQ(scaler.loss_scale(), 1024);
  scaler.update(false);
  scaler.update(true);  // the overflow resets the count of clean steps
  scaler.update(false);
  scaler.update(false);
  EXPECT_EQ(scaler.loss_scale(), 512);
  EXPECT_EQ(scaler.growth_tracker(), 2);
  EXPECT_EQ(scaler.skipped_steps(), 2);
}

TEST(GradScalerTest, StepSkipsTheOptimizerOnOverflowAndStepsOtherwise) {
  GradScalerOptions o;
  o.init_scale = 2;
  GradScaler scaler(o);
  Tensor p = param_with_grad({2, 4});
  optim::SGD sgd({p}, optim::SgdOptions{1.0, 0.0});
  EXPECT_TRUE(scaler.step(sgd));
  EXPECT_EQ(p.to_vector<double>(), (std::vector<double>{-1, -2}));
  p.set_grad(Tensor::from_vector(std::vector<double>{INFINITY, 1}, {2}));
  EXPECT_FALSE(scaler.step(sgd));
  EXPECT_EQ(p.to_vector<double>(), (std::vector<double>{-1, -2}));
  EXPECT_EQ(scaler.loss_scale(), 1);
}

TEST(GradScalerTest, ScaledLossAndDisabledScaler) {
  GradScaler scaler;
  EXPECT_EQ(scaler.scale(Tensor::scalar(3.0)).item(), 3.0 * 65536);
  GradScalerOptions off;
  off.enabled = false;
  GradScaler disabled(off);
  EXPECT_EQ(disabled.scale(Tensor::scalar(3.0)).item(), 3.0);
  Tensor p = param_with_grad({INFINITY});
  EXPECT_FALSE(disabled.unscale({p}));
}

TEST(GradScalerTest, StateRoundTripsAndBadOptionsAreErrors) {
  GradScaler a;
  a.update(true);
  a.update(false);
  GradScaler b;
  b.load_state(a.state());
  EXPECT_EQ(b.loss_scale(), a.loss_scale());
  EXPECT_EQ(b.growth_tracker(), 1);
  EXPECT_EQ(b.skipped_steps(), 1);
  GradScalerOptions bad;
  bad.backoff_factor = 1.5;
  EXPECT_THROW(GradScaler{bad}, Error);
}

TEST(GradScalerTest, UnscaleKernelNeverClearsAFlagAlreadySet) {
  float flag = 1.0f;
  std::vector<float> x = {1, 2};
  void* data[1] = {x.data()};
  const int64_t n[1] = {2};
  kernels::unscale_check_cpu(DType::f32, data, n, 1, 0.5, &flag);
  EXPECT_EQ(flag, 1.0f);
  EXPECT_EQ(x, (std::vector<float>{0.5f, 1.0f}));
}

}  // namespace
}  // namespace tessera::amp
