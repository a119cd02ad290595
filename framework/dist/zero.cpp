// ZeRO-1 AdamW (zero.h): layout, the sharded step, and state replacement for checkpoints.
#include "framework/dist/zero.h"

#include <algorithm>
#include <unordered_set>

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"
#include "framework/core/error.h"
#include "framework/dist/flat.h"
#include "kernels/optim.h"

namespace tessera::dist {

ZeroLayout make_zero_layout(const std::vector<int64_t>& numels, int world) {
  TESSERA_CHECK(world >= 1, "ZeRO layout: world size ", world);
  ZeroLayout layout;
  layout.world = world;
  layout.numels = numels;
  for (int64_t n : numels) {
    layout.offsets.push_back(layout.total);
    layout.total += n;
  }
  // Shards are a multiple of 4 elements so that every shard starts 16-byte aligned.
  const int64_t per_rank = (layout.total + world - 1) / world;
  layout.shard = std::max<int64_t>(4, (per_rank + 3) / 4 * 4);
  layout.padded = layout.shard * world;
  return layout;
}

std::vector<ZeroLayout::Piece> ZeroLayout::pieces(int rank) const {
  std::vector<Piece> out;
  const int64_t begin = static_cast<int64_t>(rank) * shard, end = begin + shard;
  for (size_t i = 0; i < numels.size(); ++i) {
    const int64_t lo = std::max(begin, offsets[i]), hi = std::min(end, offsets[i] + numels[i]);
    if (lo < hi) out.push_back({i, lo - offsets[i], lo - begin, hi - lo});
  }
  return out;
}

namespace {

std::vector<std::pair<std::string, Tensor>> trainable(const nn::Module& module) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : module.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

float* f32_at(const Tensor& t, int64_t offset) { return static_cast<float*>(t.data_ptr()) + offset; }

void* stream_of(const Device& device) {
#ifdef TESSERA_WITH_CUDA
  if (device.is_cuda()) return cuda::compute_stream(device.index);
#endif
  return nullptr;
}

}  // namespace

ZeroAdamW::ZeroAdamW(const nn::Module& module, Communicator& communicator, ZeroOptions options)
    : ZeroAdamW(trainable(module), communicator, options) {}

ZeroAdamW::ZeroAdamW(std::vector<std::pair<std::string, Tensor>> named_parameters, Communicator& communicator,
                     ZeroOptions options)
    : communicator_(&communicator), options_(options), params_(std::move(named_parameters)),
      device_(communicator.device()) {
  TESSERA_CHECK(!params_.empty(), "ZeRO optimizer: no parameters to optimize");
  TESSERA_CHECK(options.lr >= 0, "ZeRO optimizer: learning rate ", options.lr, " is negative");
  const DType wire = options.reduce_dtype;
  TESSERA_CHECK(wire == DType::f32 || wire == DType::bf16 || wire == DType::f16,
                "ZeRO optimizer: dist.allreduce_dtype must be fp32, bf16 or fp16, got ", dtype_name(wire));
  param_dtype_ = params_.front().second.dtype();
  std::unordered_set<const TensorImpl*> seen;
  std::vector<int64_t> numels;
  for (const auto& [name, t] : params_) {
    TESSERA_CHECK(t.defined() && t.is_leaf() && t.requires_grad(), "ZeRO optimizer: parameter `", name,
                  "` must be a leaf tensor that requires a gradient");
    TESSERA_CHECK(t.dtype() == param_dtype_ && (param_dtype_ == DType::f32 || param_dtype_ == DType::bf16 ||
                                                param_dtype_ == DType::f16),
                  "ZeRO optimizer: parameter `", name, "` is ", dtype_name(t.dtype()),
                  "; all parameters must share one of f32, bf16, f16 (the first is ", dtype_name(param_dtype_), ")");
    TESSERA_CHECK(t.device() == device_, "ZeRO optimizer: parameter `", name, "` is on ", t.device().str(),
                  " but the communicator serves ", device_.str());
    TESSERA_CHECK(t.is_contiguous(), "ZeRO optimizer: parameter `", name, "` is not contiguous");
    TESSERA_CHECK(seen.insert(t.impl()).second, "ZeRO optimizer: parameter `", name, "` is listed twice");
    numels.push_back(t.numel());
  }
  TESSERA_CHECK(options_.weight_decay_mask.empty() || options_.weight_decay_mask.size() == params_.size(),
                "ZeRO optimizer: the weight-decay mask has ", options_.weight_decay_mask.size(), " entries for ",
                params_.size(), " parameters");
  layout_ = make_zero_layout(numels, communicator.world_size());
  pieces_ = layout_.pieces(communicator.rank());
  param_steps_.assign(params_.size(), 0);

  grad_flat_ = Tensor::zeros({layout_.padded}, wire, device_);
  grad_shard_wire_ = Tensor::zeros({layout_.shard}, wire, device_);
  grad_shard_ = Tensor::zeros({layout_.shard}, DType::f32, device_);
  master_ = Tensor::zeros({layout_.shard}, DType::f32, device_);
  exp_avg_ = Tensor::zeros({layout_.shard}, DType::f32, device_);
  exp_avg_sq_ = Tensor::zeros({layout_.shard}, DType::f32, device_);
  param_shard_ = Tensor::zeros({layout_.shard}, param_dtype_, device_);
  param_flat_ = Tensor::zeros({layout_.padded}, param_dtype_, device_);

  // The masters start as this rank's slice of the parameters (the same on every rank).
  std::vector<kernels::FlatSegment> segments;
  const size_t element = dtype_size(param_dtype_);
  for (const auto& piece : pieces_) {
    auto* base = static_cast<char*>(params_[piece.param].second.data_ptr());
    segments.push_back({base + piece.param_begin * element, piece.numel, piece.shard_begin});
  }
  NoGradGuard no_grad;
  pack_segments(param_dtype_, segments, master_);
}

void ZeroAdamW::set_lr(double lr) {
  TESSERA_CHECK(lr >= 0, "ZeRO optimizer: learning rate ", lr, " is negative");
  options_.lr = lr;
}

void ZeroAdamW::zero_grad() {
  for (auto& [name, t] : params_) t.zero_grad();
}

void ZeroAdamW::step(double max_grad_norm, bool compute_norm) {
  TESSERA_CHECK(max_grad_norm >= 0, "ZeRO optimizer: max_grad_norm ", max_grad_norm, " is negative");
  NoGradGuard no_grad;
  const int world = communicator_->world_size();
  const bool f32_wire = options_.reduce_dtype == DType::f32;

  // 1-2. Pack the gradients and reduce-scatter them.
  std::vector<bool> has_grad(params_.size(), false);
  std::vector<Tensor> held;  // contiguous copies of strided gradients, alive until packed
  std::vector<kernels::FlatSegment> segments;
  for (size_t i = 0; i < params_.size(); ++i) {
    const auto& [name, p] = params_[i];
    Tensor g = p.grad();
    if (g.defined()) {
      TESSERA_CHECK(g.dtype() == param_dtype_ && g.device() == device_ && g.shape() == p.shape(),
                    "ZeRO optimizer: the gradient of `", name, "` is ", dtype_name(g.dtype()), " ",
                    shape_str(g.shape()), " on ", g.device().str(), "; expected it to match the parameter");
      if (!g.is_contiguous()) held.push_back(g = g.clone_data());
      has_grad[i] = true;
    }
    segments.push_back({g.defined() ? g.data_ptr() : nullptr, p.numel(), layout_.offsets[i]});
  }
  pack_segments(param_dtype_, segments, grad_flat_, f32_wire ? 1.0 : 1.0 / world);
  communicator_->reduce_scatter(grad_shard_wire_, grad_flat_, ReduceOp::sum, false, "zero gradients").wait();
  unpack_segments(grad_shard_wire_, DType::f32, {{grad_shard_.data_ptr(), layout_.shard, 0}},
                  f32_wire ? 1.0 / world : 1.0);

  // 3. Global norm from every shard's partial sums, in rank order on every rank.
  [[maybe_unused]] void* stream = stream_of(device_);
  if (max_grad_norm > 0 || compute_norm) {
    const void* data[1] = {grad_shard_.data_ptr()};
    const int64_t numel[1] = {layout_.shard};
    const int64_t chunks = kernels::norm_chunk_count(numel, 1);
    Tensor partials = Tensor::empty({chunks}, DType::f64, device_);
    Tensor all_partials = Tensor::empty({chunks * world}, DType::f64, device_);
    Tensor norm = Tensor::empty({}, DType::f32, device_), coef = Tensor::empty({1}, DType::f32, device_);
    if (device_.is_cpu()) {
      kernels::grad_norm_partials_cpu(DType::f32, data, numel, 1, partials.data<double>());
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::grad_norm_partials_cuda(DType::f32, data, numel, 1, partials.data<double>(), stream);
#endif
    }
    communicator_->all_gather(all_partials, partials, "zero grad norm").wait();
    const double max_norm = max_grad_norm > 0 ? max_grad_norm : 1e300;
    void* shard_data[1] = {grad_shard_.data_ptr()};
    if (device_.is_cpu()) {
      kernels::clip_coefficient_cpu(all_partials.data<double>(), chunks * world, max_norm, norm.data<float>(),
                                    coef.data<float>());
      if (max_grad_norm > 0) kernels::scale_by_cpu(DType::f32, shard_data, numel, 1, coef.data<float>());
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::clip_coefficient_cuda(all_partials.data<double>(), chunks * world, max_norm, norm.data<float>(),
                                     coef.data<float>(), stream);
      if (max_grad_norm > 0) kernels::scale_by_cuda(DType::f32, shard_data, numel, 1, coef.data<float>(), stream);
#endif
    }
    grad_norm_ = norm;
  }

  // 4. AdamW on the pieces of this shard whose parameter has a gradient: one launch for the
  // parameters with weight decay, one for those without (the mask).
  for (size_t i = 0; i < params_.size(); ++i)
    if (has_grad[i]) ++param_steps_[i];
  std::vector<kernels::OptimTensor> groups[2];  // [0]: no decay, [1]: decay
  for (const auto& piece : pieces_) {
    if (!has_grad[piece.param]) continue;
    kernels::OptimTensor t;
    t.param = f32_at(master_, piece.shard_begin);
    t.grad = f32_at(grad_shard_, piece.shard_begin);
    t.state[0] = f32_at(exp_avg_, piece.shard_begin);
    t.state[1] = f32_at(exp_avg_sq_, piece.shard_begin);
    t.numel = piece.numel;
    t.step = param_steps_[piece.param];
    const bool decays = options_.weight_decay_mask.empty() || options_.weight_decay_mask[piece.param];
    groups[decays ? 1 : 0].push_back(t);
  }
  for (int decays = 0; decays < 2; ++decays) {
    std::vector<kernels::OptimTensor>& tensors = groups[decays];
    if (tensors.empty()) continue;
    kernels::AdamConfig config;
    config.lr = options_.lr;
    config.beta1 = options_.beta1;
    config.beta2 = options_.beta2;
    config.eps = options_.eps;
    config.weight_decay = decays ? options_.weight_decay : 0.0;
    config.decoupled_weight_decay = true;
    if (device_.is_cpu()) {
      kernels::adam_update_cpu(DType::f32, tensors.data(), static_cast<int64_t>(tensors.size()), config);
    } else {
#ifdef TESSERA_WITH_CUDA
      kernels::adam_update_cuda(DType::f32, tensors.data(), static_cast<int64_t>(tensors.size()), config, stream);
#endif
    }
  }
  ++steps_;

  // 5. Everyone's updated shard into every rank's parameters.
  gather_parameters();
}

void ZeroAdamW::gather_parameters() {
  NoGradGuard no_grad;
  pack_segments(DType::f32, {{master_.data_ptr(), layout_.shard, 0}}, param_shard_);
  communicator_->all_gather(param_flat_, param_shard_, "zero parameters").wait();
  std::vector<kernels::FlatSegment> segments;
  for (size_t i = 0; i < params_.size(); ++i)
    segments.push_back({params_[i].second.data_ptr(), params_[i].second.numel(), layout_.offsets[i]});
  unpack_segments(param_flat_, param_dtype_, segments);
}

void ZeroAdamW::load_shard_state(const Tensor& master, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                                 std::vector<int64_t> param_steps, int64_t steps) {
  for (const Tensor* t : {&master, &exp_avg, &exp_avg_sq})
    TESSERA_CHECK(t->defined() && t->numel() == layout_.shard, "ZeRO optimizer: a shard state tensor has ",
                  t->defined() ? t->numel() : 0, " elements; this rank's shard has ", layout_.shard);
  TESSERA_CHECK(param_steps.size() == params_.size(), "ZeRO optimizer: ", param_steps.size(),
                " parameter step counts for ", params_.size(), " parameters");
  copy_into(master_, master.reshape({layout_.shard}));
  copy_into(exp_avg_, exp_avg.reshape({layout_.shard}));
  copy_into(exp_avg_sq_, exp_avg_sq.reshape({layout_.shard}));
  param_steps_ = std::move(param_steps);
  steps_ = steps;
  gather_parameters();
}

}  // namespace tessera::dist
