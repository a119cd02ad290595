// Shape-changing layers without parameters: AvgPool2d, Upsample, Flatten.
//
// defines: tessera::nn::AvgPool2d, Upsample, Flatten
//
// AvgPool2d(kernel, stride = kernel, padding = 0) as torch.nn.AvgPool2d with its defaults
// (count_include_pad=True). Upsample(scale) as torch.nn.Upsample(scale_factor=scale,
// mode="nearest") with an integer scale. Flatten(start_dim = 1, end_dim = -1) as
// torch.nn.Flatten. Ops: framework/ops/pool.h and shape.h.
#pragma once

#include "framework/nn/module.h"
#include "framework/ops/conv.h"  // Size2

namespace tessera::nn {

class AvgPool2d : public UnaryModule {
 public:
  explicit AvgPool2d(Size2 kernel, Size2 stride = Size2(0), Size2 padding = Size2(0));
  Tensor forward(const Tensor& x) override;

 private:
  Size2 kernel_, stride_, padding_;
};

class Upsample : public UnaryModule {
 public:
  explicit Upsample(int64_t scale);
  Tensor forward(const Tensor& x) override;
  int64_t scale() const { return scale_; }

 private:
  int64_t scale_;
};

class Flatten : public UnaryModule {
 public:
  explicit Flatten(int64_t start_dim = 1, int64_t end_dim = -1);
  Tensor forward(const Tensor& x) override;

 private:
  int64_t start_dim_, end_dim_;
};

}  // namespace tessera::nn
