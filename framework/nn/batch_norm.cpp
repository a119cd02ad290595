// BatchNorm2d and GroupNorm layers (batch_norm.h).
#include "framework/nn/batch_norm.h"

#include "framework/ops/batch_norm.h"

namespace tessera::nn {
namespace {

void check_input(const char* layer, int64_t channels, const Tensor& x) {
  TESSERA_CHECK(x.defined() && x.dim() >= 2 && x.size(1) == channels, layer, "(", channels,
                "): input must be [N, ", channels, ", ...], got ",
                x.defined() ? shape_str(x.shape()) : std::string("(undefined)"));
}

}  // namespace

BatchNorm2d::BatchNorm2d(int64_t num_features, double eps, double momentum, bool affine, bool track_running_stats)
    : num_features_(num_features), eps_(eps), momentum_(momentum) {
  TESSERA_CHECK(num_features > 0, "BatchNorm2d: num_features must be positive, got ", num_features);
  TESSERA_CHECK(eps >= 0.0, "BatchNorm2d: eps ", eps, " is negative");
  TESSERA_CHECK(momentum >= 0.0 && momentum <= 1.0, "BatchNorm2d: momentum must lie in [0, 1], got ", momentum);
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({num_features}));
    bias_ = register_parameter("bias", Tensor::zeros({num_features}));
  }
  if (track_running_stats) {
    running_mean_ = register_buffer("running_mean", Tensor::zeros({num_features}));
    running_var_ = register_buffer("running_var", Tensor::ones({num_features}));
    num_batches_tracked_ = register_buffer("num_batches_tracked", Tensor::zeros({}, DType::i64));
  }
}

Tensor BatchNorm2d::forward(const Tensor& x) {
  check_input("BatchNorm2d", num_features_, x);
  if (is_training() && replica_sum_)
    return sync_batch_norm(x, weight_, bias_, running_mean_, running_var_, momentum_, eps_, num_batches_tracked_,
                           replica_sum_);
  const bool use_batch_stats = is_training() || !running_mean_.defined();
  return batch_norm(x, weight_, bias_, running_mean_, running_var_, use_batch_stats, momentum_, eps_,
                    is_training() ? num_batches_tracked_ : Tensor());
}

GroupNorm::GroupNorm(int64_t num_groups, int64_t num_channels, double eps, bool affine)
    : num_groups_(num_groups), num_channels_(num_channels), eps_(eps) {
  TESSERA_CHECK(num_groups > 0 && num_channels > 0 && num_channels % num_groups == 0, "GroupNorm: num_groups=",
                num_groups, " must be positive and divide num_channels=", num_channels);
  TESSERA_CHECK(eps >= 0.0, "GroupNorm: eps ", eps, " is negative");
  if (affine) {
    weight_ = register_parameter("weight", Tensor::ones({num_channels}));
    bias_ = register_parameter("bias", Tensor::zeros({num_channels}));
  }
}

Tensor GroupNorm::forward(const Tensor& x) {
  check_input("GroupNorm", num_channels_, x);
  return group_norm(x, num_groups_, weight_, bias_, eps_);
}

}  // namespace tessera::nn
