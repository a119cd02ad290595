// ZeroAdamW: AdamW whose f32 master weights and moments are sharded across ranks (ZeRO stage 1,
// `dist.zero = 1`).
//
// defines: tessera::dist::ZeroAdamW, ZeroOptions, ZeroLayout, make_zero_layout
//
// The parameters are laid out back to back in one flat space (registration order), padded at
// the end so that it divides into `world` equal shards of `shard` elements (a multiple of 4,
// for vector access); rank r owns [r * shard, (r + 1) * shard). It keeps only its shard of the
// f32 master weights and of Adam's two moments, so optimizer memory falls by the world size.
// A step, after backward (no Reducer: the reduce-scatter replaces its all-reduce):
//   1. pack every gradient into one flat buffer in the wire dtype (`dist.allreduce_dtype`;
//      missing gradients are zeros; bf16/fp16 pre-divided by the world size);
//   2. reduce-scatter it: each rank receives the sum of its shard; converted to f32 and
//      averaged;
//   3. optionally clip by the global norm: per-chunk partial sums of squares of every shard are
//      all-gathered, so every rank computes the same norm from the same numbers in the same
//      order, with no host synchronisation (kernels/optim.h);
//   4. the fused AdamW kernel (kernels/optim.h, the one optim::AdamW uses) updates the shard —
//      piece by piece, one piece per parameter overlapping it, each with that parameter's own
//      step count; parameters without a gradient this step are skipped, as in optim::AdamW;
//   5. the updated shard, cast to the parameters' dtype, is all-gathered and unpacked into the
//      parameters.
// With the same gradients this computes what plain data parallelism with optim::AdamW computes.
// Checkpoints (one shard file per rank plus a manifest, loadable at another world size) live in
// framework/train/zero_checkpoint.h, above this layer.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "framework/dist/communicator.h"
#include "framework/nn/module.h"

namespace tessera::dist {

struct ZeroOptions {
  double lr = 1e-3;
  double beta1 = 0.9;
  double beta2 = 0.999;
  double eps = 1e-8;
  double weight_decay = 0.01;
  DType reduce_dtype = DType::f32;  // wire dtype of the gradient reduce-scatter
  // Which parameters get weight_decay (one entry per parameter, in order); empty: all of them.
  // What two optim::AdamW instances (decay / no-decay groups) do, in one sharded optimizer, so
  // that gradient clipping still sees the global norm.
  std::vector<bool> weight_decay_mask = {};
};

// Where every parameter lives in the flat space, and how it is cut into shards.
struct ZeroLayout {
  int world = 1;
  std::vector<int64_t> offsets;  // per parameter
  std::vector<int64_t> numels;   // per parameter
  int64_t total = 0;             // sum of numels
  int64_t shard = 0;             // elements per rank
  int64_t padded = 0;            // world * shard >= total

  // The part of parameter `param` inside shard `rank`.
  struct Piece {
    size_t param = 0;
    int64_t param_begin = 0;  // first element within the parameter
    int64_t shard_begin = 0;  // first element within the shard
    int64_t numel = 0;
  };
  std::vector<Piece> pieces(int rank) const;
};

ZeroLayout make_zero_layout(const std::vector<int64_t>& numels, int world);

class ZeroAdamW {
 public:
  // All parameters must share one floating dtype and the communicator's device, and hold the
  // same values on every rank (broadcast_parameters). Collective: every rank constructs it.
  ZeroAdamW(std::vector<std::pair<std::string, Tensor>> named_parameters, Communicator& communicator,
            ZeroOptions options = {});
  ZeroAdamW(const nn::Module& module, Communicator& communicator, ZeroOptions options = {});

  // Steps 1-5 above. max_grad_norm > 0 clips; compute_norm also computes the norm without
  // clipping (read it with grad_norm()). Collective.
  void step(double max_grad_norm = 0.0, bool compute_norm = false);
  void zero_grad();

  double lr() const { return options_.lr; }
  void set_lr(double lr);
  int64_t steps() const { return steps_; }
  const ZeroOptions& options() const { return options_; }
  // The global gradient norm (before clipping) of the last step that computed it: a 0-dim f32
  // tensor on the parameters' device; undefined before.
  const Tensor& grad_norm() const { return grad_norm_; }

  const ZeroLayout& layout() const { return layout_; }
  Communicator& communicator() const { return *communicator_; }
  const std::vector<std::pair<std::string, Tensor>>& named_parameters() const { return params_; }
  // This rank's shard state ([shard] f32 on the parameters' device) and per-parameter steps.
  const Tensor& master_shard() const { return master_; }
  const Tensor& exp_avg_shard() const { return exp_avg_; }
  const Tensor& exp_avg_sq_shard() const { return exp_avg_sq_; }
  const std::vector<int64_t>& param_steps() const { return param_steps_; }

  // Replaces the shard state (tensors of [shard] elements, any device; converted to f32) and
  // the step counts, then refreshes every parameter from the masters (all-gather). Collective.
  void load_shard_state(const Tensor& master, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                        std::vector<int64_t> param_steps, int64_t steps);

 private:
  void gather_parameters();

  Communicator* communicator_;
  ZeroOptions options_;
  std::vector<std::pair<std::string, Tensor>> params_;
  DType param_dtype_ = DType::f32;
  Device device_;
  ZeroLayout layout_;
  std::vector<ZeroLayout::Piece> pieces_;
  std::vector<int64_t> param_steps_;
  int64_t steps_ = 0;
  // Persistent buffers (same addresses every step).
  Tensor grad_flat_;        // [padded] wire dtype (padding stays zero)
  Tensor grad_shard_wire_;  // [shard] wire dtype
  Tensor grad_shard_;       // [shard] f32
  Tensor master_, exp_avg_, exp_avg_sq_;  // [shard] f32
  Tensor param_shard_;      // [shard] parameter dtype
  Tensor param_flat_;       // [padded] parameter dtype
  Tensor grad_norm_;
};

}  // namespace tessera::dist
