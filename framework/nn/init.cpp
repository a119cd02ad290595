// In-place initialisers (init.h): draw a fresh tensor, copy it into the target's storage.
#include "framework/nn/init.h"

#include <cmath>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"

namespace tessera::nn::init {
namespace {

void check_target(const char* fn, const Tensor& t) {
  TESSERA_CHECK(t.defined(), "init::", fn, ": tensor is undefined");
  TESSERA_CHECK(is_floating_point(t.dtype()), "init::", fn, ": expected a floating-point tensor, got ",
                dtype_name(t.dtype()));
}

}  // namespace

void uniform_(const Tensor& t, double low, double high, Generator* gen) {
  check_target("uniform_", t);
  TESSERA_CHECK(low <= high, "init::uniform_: low ", low, " is above high ", high);
  NoGradGuard no_grad;
  copy_into(t, rand(t.shape(), low, high, t.dtype(), t.device(), gen));
}

void normal_(const Tensor& t, double mean, double std, Generator* gen) {
  check_target("normal_", t);
  TESSERA_CHECK(std >= 0.0, "init::normal_: std ", std, " is negative");
  NoGradGuard no_grad;
  copy_into(t, randn(t.shape(), mean, std, t.dtype(), t.device(), gen));
}

void constant_(const Tensor& t, double value) {
  check_target("constant_", t);
  NoGradGuard no_grad;
  copy_into(t, Tensor::full(t.shape(), value, t.dtype(), t.device()));
}

void zeros_(const Tensor& t) { constant_(t, 0.0); }
void ones_(const Tensor& t) { constant_(t, 1.0); }

int64_t fan_in(const Tensor& t) {
  TESSERA_CHECK(t.defined() && t.dim() >= 2, "init::fan_in: needs a tensor of at least 2 dimensions, got shape ",
                t.defined() ? shape_str(t.shape()) : std::string("(undefined)"));
  int64_t receptive = 1;
  for (int64_t d = 2; d < t.dim(); ++d) receptive *= t.shape()[d];
  return t.shape()[1] * receptive;
}

void kaiming_uniform_(const Tensor& t, double a, Generator* gen) {
  check_target("kaiming_uniform_", t);
  const int64_t fan = fan_in(t);
  TESSERA_CHECK(fan > 0, "init::kaiming_uniform_: zero fan-in for shape ", shape_str(t.shape()));
  const double gain = std::sqrt(2.0 / (1.0 + a * a));
  const double bound = gain * std::sqrt(3.0 / static_cast<double>(fan));
  uniform_(t, -bound, bound, gen);
}

}  // namespace tessera::nn::init
