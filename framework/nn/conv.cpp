// Conv2d and ConvTranspose2d layers (conv.h).
#include "framework/nn/conv.h"

#include <cmath>

#include "framework/nn/init.h"

namespace tessera::nn {
namespace {

void check_sizes(const char* layer, int64_t in_channels, int64_t out_channels, const Size2& kernel, int64_t groups) {
  TESSERA_CHECK(in_channels > 0 && out_channels > 0, layer, ": channels must be positive, got in_channels=",
                in_channels, " out_channels=", out_channels);
  TESSERA_CHECK(kernel.h > 0 && kernel.w > 0, layer, ": kernel size must be positive, got (", kernel.h, ", ",
                kernel.w, ")");
  TESSERA_CHECK(groups > 0 && in_channels % groups == 0 && out_channels % groups == 0, layer, ": groups=", groups,
                " must divide in_channels=", in_channels, " and out_channels=", out_channels);
}

// torch's reset_parameters for _ConvNd.
void init_parameters(const Tensor& weight, const Tensor& bias, Generator* gen) {
  init::kaiming_uniform_(weight, std::sqrt(5.0), gen);
  if (bias.defined()) {
    const double bound = 1.0 / std::sqrt(static_cast<double>(init::fan_in(weight)));
    init::uniform_(bias, -bound, bound, gen);
  }
}

void check_input(const char* layer, int64_t in_channels, const Tensor& x) {
  TESSERA_CHECK(x.defined() && x.dim() == 4 && x.size(1) == in_channels, layer, "(", in_channels,
                " channels in): input must be [N, ", in_channels, ", H, W], got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
}

}  // namespace

Conv2d::Conv2d(int64_t in_channels, int64_t out_channels, const Conv2dSettings& s, Generator* gen)
    : in_channels_(in_channels), out_channels_(out_channels) {
  check_sizes("Conv2d", in_channels, out_channels, s.kernel, s.groups);
  options_ = {.stride = s.stride, .padding = s.padding, .dilation = s.dilation, .groups = s.groups};
  weight_ = register_parameter("weight", Tensor::empty({out_channels, in_channels / s.groups, s.kernel.h, s.kernel.w}));
  if (s.bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}));
  init_parameters(weight_, bias_, gen);
}

Tensor Conv2d::forward(const Tensor& x) {
  check_input("Conv2d", in_channels_, x);
  return conv2d(x, weight_, bias_, options_);
}

ConvTranspose2d::ConvTranspose2d(int64_t in_channels, int64_t out_channels, const ConvTranspose2dSettings& s,
                                 Generator* gen)
    : in_channels_(in_channels), out_channels_(out_channels) {
  check_sizes("ConvTranspose2d", in_channels, out_channels, s.kernel, s.groups);
  options_ = {.stride = s.stride,
              .padding = s.padding,
              .output_padding = s.output_padding,
              .dilation = s.dilation,
              .groups = s.groups};
  weight_ = register_parameter("weight", Tensor::empty({in_channels, out_channels / s.groups, s.kernel.h, s.kernel.w}));
  if (s.bias) bias_ = register_parameter("bias", Tensor::empty({out_channels}));
  init_parameters(weight_, bias_, gen);
}

Tensor ConvTranspose2d::forward(const Tensor& x) {
  check_input("ConvTranspose2d", in_channels_, x);
  return conv_transpose2d(x, weight_, bias_, options_);
}

}  // namespace tessera::nn
