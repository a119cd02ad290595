// Convolution layers on NCHW images: Conv2d and ConvTranspose2d.
//
// defines: tessera::nn::Conv2d, ConvTranspose2d, Conv2dSettings, ConvTranspose2dSettings
//
// Parameters as in torch.nn: Conv2d "weight" [out, in/groups, kh, kw], ConvTranspose2d
// "weight" [in, out/groups, kh, kw], both with "bias" [out] unless bias = false. Initialised
// like PyTorch: weight by kaiming_uniform_(a = sqrt(5)) and bias U(-1/sqrt(fan_in),
// 1/sqrt(fan_in)), where fan_in = weight.size(1) * kh * kw (torch computes it from the weight
// tensor for both layers). Created f32 on the CPU; move with to(). The ops are
// framework/ops/conv.h.
#pragma once

#include "framework/core/rng.h"
#include "framework/nn/module.h"
#include "framework/ops/conv.h"

namespace tessera::nn {

struct Conv2dSettings {
  Size2 kernel{1};
  Size2 stride{1}, padding{0}, dilation{1};
  int64_t groups = 1;
  bool bias = true;
};

struct ConvTranspose2dSettings {
  Size2 kernel{1};
  Size2 stride{1}, padding{0}, output_padding{0}, dilation{1};
  int64_t groups = 1;
  bool bias = true;
};

class Conv2d : public UnaryModule {
 public:
  Conv2d(int64_t in_channels, int64_t out_channels, const Conv2dSettings& settings, Generator* gen = nullptr);
  // x [N, in, H, W] -> [N, out, OH, OW]
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }  // undefined without bias

 private:
  int64_t in_channels_, out_channels_;
  Conv2dOptions options_;
  Tensor weight_, bias_;
};

class ConvTranspose2d : public UnaryModule {
 public:
  ConvTranspose2d(int64_t in_channels, int64_t out_channels, const ConvTranspose2dSettings& settings,
                  Generator* gen = nullptr);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t in_channels_, out_channels_;
  ConvTranspose2dOptions options_;
  Tensor weight_, bias_;
};

}  // namespace tessera::nn
