// The data-parallel reducer (ddp.h): bucket assignment, grad-ready hooks, launch in order,
// write-back.
#include "framework/dist/ddp.h"

#include <algorithm>
#include <unordered_set>

#include "framework/autograd/grad_mode.h"
#include "framework/core/error.h"
#include "framework/dist/flat.h"

namespace tessera::dist {

DType parse_allreduce_dtype(const std::string& text) {
  if (text == "fp32" || text == "f32" || text == "float32") return DType::f32;
  if (text == "bf16" || text == "bfloat16") return DType::bf16;
  if (text == "fp16" || text == "f16" || text == "float16") return DType::f16;
  detail::throw_error(detail::cat("config key `dist.allreduce_dtype` is \"", text,
                                  "\"; expected one of: fp32, bf16, fp16"));
}

std::vector<std::vector<size_t>> assign_buckets(const std::vector<BucketPlanEntry>& params, size_t wire_element_bytes,
                                                double first_bucket_mb, double bucket_mb) {
  TESSERA_CHECK(first_bucket_mb > 0, "config key `dist.first_bucket_mb` must be positive, got ", first_bucket_mb);
  TESSERA_CHECK(bucket_mb > 0, "config key `dist.bucket_mb` must be positive, got ", bucket_mb);
  std::vector<std::vector<size_t>> buckets;
  std::vector<size_t> open;
  double open_bytes = 0.0;
  auto close = [&] {
    if (open.empty()) return;
    buckets.push_back(std::move(open));
    open.clear();
    open_bytes = 0.0;
  };
  for (size_t k = params.size(); k-- > 0;) {
    const BucketPlanEntry& p = params[k];
    const double bytes = static_cast<double>(p.numel) * static_cast<double>(wire_element_bytes);
    const double limit = (buckets.empty() ? first_bucket_mb : bucket_mb) * 1024.0 * 1024.0;
    if (!open.empty()) {
      const BucketPlanEntry& first = params[open.front()];
      if (first.dtype != p.dtype || !(first.device == p.device) || open_bytes + bytes > limit) close();
    }
    open.push_back(k);
    open_bytes += bytes;
  }
  close();
  return buckets;
}

struct Reducer::State {
  struct Param {
    std::string name;
    Tensor tensor;
    size_t bucket = 0;
    int64_t offset = 0;  // in the bucket buffer
    bool ready = false;
  };
  struct Bucket {
    std::vector<size_t> params;
    int64_t numel = 0;
    DType dtype = DType::f32;
    Device device;
    Tensor wire;           // the flat buffer, wire dtype
    size_t pending = 0;    // parameters not ready yet this step
    bool launched = false;
    std::vector<Tensor> grads;  // gradients packed at launch (undefined: none)
    Work work;
  };

  Communicator* communicator = nullptr;
  DdpOptions options;
  std::vector<Param> params;
  std::vector<Bucket> buckets;
  size_t next_launch = 0;
  bool sync = true;
  bool enabled = true;
  bool step_open = false;  // a bucket was launched and finish() has not run yet
  int64_t step_in_backward = 0, step_in_finish = 0, step_skipped = 0;
  int64_t last_in_backward = 0, last_in_finish = 0, last_skipped = 0;

  double pre_scale() const {
    return options.allreduce_dtype == DType::f32 ? 1.0 : 1.0 / communicator->world_size();
  }
  double post_scale() const {
    return options.allreduce_dtype == DType::f32 ? 1.0 / communicator->world_size() : 1.0;
  }

  void on_grad_ready(size_t index) {
    if (!enabled || !sync) return;
    Param& p = params[index];
    Bucket& b = buckets[p.bucket];
    TESSERA_CHECK(!b.launched, "DDP reducer: the gradient of `", p.name, "` became ready again after its bucket (",
                  p.bucket, ") was sent this step; run one backward per step, or wrap the earlier backward calls "
                  "of the step in no_sync()");
    if (p.ready) return;
    p.ready = true;
    if (--b.pending > 0) return;
    while (next_launch < buckets.size() && buckets[next_launch].pending == 0) {
      launch(next_launch++);
      ++step_in_backward;
    }
  }

  void launch(size_t index) {
    Bucket& b = buckets[index];
    b.grads.clear();
    std::vector<kernels::FlatSegment> segments;
    for (size_t i : b.params) {
      const Param& p = params[i];
      Tensor g = p.tensor.grad();
      if (g.defined()) {
        TESSERA_CHECK(g.dtype() == b.dtype && g.device() == b.device && g.shape() == p.tensor.shape(),
                      "DDP reducer: the gradient of `", p.name, "` is ", dtype_name(g.dtype()), " ",
                      shape_str(g.shape()), " on ", g.device().str(), "; expected ", dtype_name(b.dtype), " ",
                      shape_str(p.tensor.shape()), " on ", b.device.str());
        if (!g.is_contiguous()) {
          g = g.clone_data();
          p.tensor.set_grad(g);
        }
      }
      b.grads.push_back(g);
      segments.push_back({g.defined() ? g.data_ptr() : nullptr, p.tensor.numel(), p.offset});
    }
    pack_segments(b.dtype, segments, b.wire, pre_scale());
    b.work = communicator->all_reduce(b.wire, ReduceOp::sum, false, detail::cat("bucket ", index));
    b.launched = true;
    step_open = true;
  }

  bool has_any_grad(const Bucket& b) const {
    for (size_t i : b.params)
      if (params[i].tensor.grad().defined()) return true;
    return false;
  }

  void finish() {
    if (!enabled || !sync) return;
    NoGradGuard no_grad;
    for (; next_launch < buckets.size(); ++next_launch) {
      if (buckets[next_launch].launched) continue;
      if (has_any_grad(buckets[next_launch])) {
        launch(next_launch);
        ++step_in_finish;
      } else {
        ++step_skipped;
      }
    }
    for (Bucket& b : buckets) {
      if (!b.launched) continue;
      b.work.wait();
      std::vector<kernels::FlatSegment> segments;
      for (size_t k = 0; k < b.params.size(); ++k) {
        const Param& p = params[b.params[k]];
        const Tensor& g = b.grads[k];
        segments.push_back({g.defined() ? g.data_ptr() : nullptr, p.tensor.numel(), p.offset});
      }
      unpack_segments(b.wire, b.dtype, segments, post_scale());
    }
    reset();
  }

  void reset() {
    for (Param& p : params) p.ready = false;
    for (Bucket& b : buckets) {
      b.pending = b.params.size();
      b.launched = false;
      b.grads.clear();
      b.work = Work();
    }
    next_launch = 0;
    step_open = false;
    last_in_backward = step_in_backward;
    last_in_finish = step_in_finish;
    last_skipped = step_skipped;
    step_in_backward = step_in_finish = step_skipped = 0;
  }
};

namespace {

std::vector<std::pair<std::string, Tensor>> trainable(const nn::Module& module) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (auto& [name, t] : module.named_parameters())
    if (t.requires_grad()) out.emplace_back(name, t);
  return out;
}

// A fingerprint of the bucket layout, so ranks that built different models fail clearly.
int64_t layout_fingerprint(const std::vector<Reducer::BucketInfo>& buckets) {
  uint64_t h = 1469598103934665603ull;
  auto mix = [&](uint64_t v) {
    h ^= v;
    h *= 1099511628211ull;
  };
  for (const auto& b : buckets) {
    mix(static_cast<uint64_t>(b.numel));
    mix(static_cast<uint64_t>(b.dtype));
    for (const auto& name : b.parameters)
      for (char c : name) mix(static_cast<unsigned char>(c));
  }
  return static_cast<int64_t>(h >> 1);
}

}  // namespace

Reducer::Reducer(const nn::Module& module, Communicator& communicator, DdpOptions options)
    : Reducer(trainable(module), communicator, options) {}

Reducer::Reducer(std::vector<std::pair<std::string, Tensor>> named_parameters, Communicator& communicator,
                 DdpOptions options)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.communicator = &communicator;
  s.options = options;
  const DType wire = options.allreduce_dtype;
  TESSERA_CHECK(wire == DType::f32 || wire == DType::bf16 || wire == DType::f16,
                "DDP reducer: dist.allreduce_dtype must be fp32, bf16 or fp16, got ", dtype_name(wire));

  std::unordered_set<const TensorImpl*> seen;
  std::vector<BucketPlanEntry> plan;
  for (auto& [name, t] : named_parameters) {
    TESSERA_CHECK(t.defined() && t.is_leaf() && t.requires_grad(), "DDP reducer: parameter `", name,
                  "` must be a leaf tensor that requires a gradient");
    TESSERA_CHECK(is_floating_point(t.dtype()), "DDP reducer: parameter `", name, "` is ", dtype_name(t.dtype()));
    TESSERA_CHECK(t.device() == communicator.device(), "DDP reducer: parameter `", name, "` is on ",
                  t.device().str(), " but the communicator serves ", communicator.device().str());
    TESSERA_CHECK(seen.insert(t.impl()).second, "DDP reducer: parameter `", name, "` is listed twice");
    plan.push_back({t.numel(), t.dtype(), t.device()});
    s.params.push_back({name, t});
  }

  for (const auto& indices : assign_buckets(plan, dtype_size(wire), options.first_bucket_mb, options.bucket_mb)) {
    State::Bucket b;
    b.params = indices;
    b.dtype = s.params[indices.front()].tensor.dtype();
    b.device = s.params[indices.front()].tensor.device();
    for (size_t i : indices) {
      s.params[i].bucket = s.buckets.size();
      s.params[i].offset = b.numel;
      b.numel += s.params[i].tensor.numel();
    }
    b.wire = Tensor::zeros({b.numel}, wire, b.device);
    b.pending = indices.size();
    s.buckets.push_back(std::move(b));
  }

  // Every rank must have built the same buckets: compare fingerprints (min == max).
  if (communicator.world_size() > 1) {
    const int64_t mine = layout_fingerprint(buckets());
    Tensor lo = Tensor::full({1}, 0.0, DType::i64), hi = Tensor::full({1}, 0.0, DType::i64);
    lo.data<int64_t>()[0] = -mine;
    hi.data<int64_t>()[0] = mine;
    Communicator& host = communicator;
    if (host.device().is_cpu()) {
      Work a = host.all_reduce(lo, ReduceOp::max, false, "ddp layout check");
      Work b = host.all_reduce(hi, ReduceOp::max, false, "ddp layout check");
      a.wait();
      b.wait();
    } else {
      Tensor dlo = lo.to(host.device()), dhi = hi.to(host.device());
      Work a = host.all_reduce(dlo, ReduceOp::max, false, "ddp layout check");
      Work b = host.all_reduce(dhi, ReduceOp::max, false, "ddp layout check");
      a.wait();
      b.wait();
      lo = dlo.to(Device::cpu());
      hi = dhi.to(Device::cpu());
    }
    TESSERA_CHECK(-lo.data<int64_t>()[0] == mine && hi.data<int64_t>()[0] == mine, "DDP reducer: rank ",
                  communicator.rank(), " built different buckets from another rank (parameter names, sizes or "
                  "dtypes differ, or the bucket sizes are configured differently)");
  }

  std::weak_ptr<State> weak = state_;
  for (size_t i = 0; i < s.params.size(); ++i) {
    s.params[i].tensor.register_grad_ready_hook([weak, i](const Tensor&) {
      if (auto state = weak.lock()) state->on_grad_ready(i);
    });
  }
}

Reducer::~Reducer() = default;

void Reducer::finish() { state_->finish(); }

bool Reducer::require_sync() const { return state_->sync; }

void Reducer::set_require_sync(bool on) {
  TESSERA_CHECK(!state_->step_open, "DDP reducer: cannot change sync while buckets of this step are in flight; "
                "call finish() first");
  state_->sync = on;
}

bool Reducer::enabled() const { return state_->enabled; }

void Reducer::set_enabled(bool on) {
  TESSERA_CHECK(!state_->step_open, "DDP reducer: cannot enable or disable while buckets of this step are in "
                "flight; call finish() first");
  state_->enabled = on;
  if (!on) state_->reset();
}

std::vector<Reducer::BucketInfo> Reducer::buckets() const {
  std::vector<BucketInfo> out;
  for (const auto& b : state_->buckets) {
    BucketInfo info;
    for (size_t i : b.params) info.parameters.push_back(state_->params[i].name);
    info.numel = b.numel;
    info.dtype = b.dtype;
    info.device = b.device;
    out.push_back(std::move(info));
  }
  return out;
}

const DdpOptions& Reducer::options() const { return state_->options; }
int64_t Reducer::launched_in_backward() const { return state_->last_in_backward; }
int64_t Reducer::launched_in_finish() const { return state_->last_in_finish; }
int64_t Reducer::skipped() const { return state_->last_skipped; }

}  // namespace tessera::dist
