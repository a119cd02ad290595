// Channel normalisation layers for images: BatchNorm2d and GroupNorm.
//
// defines: tessera::nn::BatchNorm2d, GroupNorm
//
// BatchNorm2d(C, eps = 1e-5, momentum = 0.1, affine = true, track_running_stats = true), as
// torch.nn.BatchNorm2d: parameters "weight" (ones) and "bias" (zeros) [C] when affine;
// buffers "running_mean" (zeros, f32), "running_var" (ones, f32) [C] and
// "num_batches_tracked" (i64 scalar 0) when tracking, under PyTorch's state-dict names. In
// training mode it normalises with batch statistics and updates the buffers in place (on the
// device, no host synchronisation); in eval mode it uses the running statistics (or batch
// statistics when not tracking, as torch does). Inputs may be [N, C] or [N, C, ...] too.
// Statistics are per process unless a replica sum is set: then training mode computes them
// over the batches of all replicas (ops' sync_batch_norm: one differentiable sum of [3, C]
// per call), as torch.nn.SyncBatchNorm. nn knows nothing of communication, so the data-parallel
// layer installs the sum (dist::synchronize_batch_norm); eval mode never uses it.
//
// GroupNorm(num_groups, C, eps = 1e-5, affine = true), as torch.nn.GroupNorm: parameters
// "weight" (ones) and "bias" (zeros) [C] when affine.
#pragma once

#include "framework/nn/module.h"
#include "framework/ops/batch_norm.h"

namespace tessera::nn {

class BatchNorm2d : public UnaryModule {
 public:
  explicit BatchNorm2d(int64_t num_features, double eps = 1e-5, double momentum = 0.1, bool affine = true,
                       bool track_running_stats = true);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }  // undefined without affine
  const Tensor& bias() const { return bias_; }
  const Tensor& running_mean() const { return running_mean_; }  // undefined without tracking
  const Tensor& running_var() const { return running_var_; }
  const Tensor& num_batches_tracked() const { return num_batches_tracked_; }
  // A differentiable sum over the replicas for the training-mode statistics; an empty function
  // (the default) keeps them per process. Every replica must then call forward in training
  // mode the same number of times, in the same order (each call is a collective).
  void set_replica_sum(ReplicaSum sum) { replica_sum_ = std::move(sum); }
  bool synchronized() const { return static_cast<bool>(replica_sum_); }

 private:
  int64_t num_features_;
  double eps_, momentum_;
  Tensor weight_, bias_, running_mean_, running_var_, num_batches_tracked_;
  ReplicaSum replica_sum_;
};

class GroupNorm : public UnaryModule {
 public:
  GroupNorm(int64_t num_groups, int64_t num_channels, double eps = 1e-5, bool affine = true);
  Tensor forward(const Tensor& x) override;
  const Tensor& weight() const { return weight_; }
  const Tensor& bias() const { return bias_; }

 private:
  int64_t num_groups_, num_channels_;
  double eps_;
  Tensor weight_, bias_;
};

}  // namespace tessera::nn
