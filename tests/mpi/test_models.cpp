// Shared pieces of the MPI tests (test_models.h).
#include "tests/mpi/test_models.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <string>

#include "framework/core/rng.h"
#include "framework/dist/process_group.h"
#include "framework/ops/ops.h"

namespace tessera::mpitest {

Device test_device() {
  const char* env = std::getenv("TESSERA_TEST_DEVICE");
  const Device requested = Device::parse(env != nullptr && env[0] != '\0' ? env : "cpu");
  return dist::ProcessGroup::get().select_device(requested);
}

Batch global_batch(int64_t step, int64_t examples, int64_t in_features, int64_t out_features, Device device) {
  Generator gen(9000 + static_cast<uint64_t>(step));
  Tensor x = randn({examples, in_features}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  Tensor y = randn({examples, out_features}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  return {x.to(device), y.to(device)};
}

Batch rank_slice(const Batch& batch, int rank, int world) {
  const int64_t micro = batch.x.size(0) / world;
  return {batch.x.slice(0, rank * micro, (rank + 1) * micro).contiguous(),
          batch.y.slice(0, rank * micro, (rank + 1) * micro).contiguous()};
}

Branchy::Branchy(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
  Generator gen(seed);
  trunk_ = register_module("trunk", std::make_shared<nn::Linear>(in, hidden, true, &gen));
  head_a_ = register_module("head_a", std::make_shared<nn::Linear>(hidden, out, true, &gen));
  head_b_ = register_module("head_b", std::make_shared<nn::Linear>(hidden, out, true, &gen));
  unused_ = register_module("unused", std::make_shared<nn::Linear>(hidden, out, true, &gen));
  frozen_ = register_module("frozen", std::make_shared<nn::Linear>(out, out, false, &gen));
  for (auto& [name, t] : frozen_->named_parameters()) t.set_requires_grad(false);
}

Tensor Branchy::forward(const Tensor& x, int64_t step) {
  Tensor h = tanh(trunk_->forward(x));
  Tensor y = step % 2 == 0 ? head_a_->forward(h) : head_b_->forward(h);
  return frozen_->forward(y);
}

std::shared_ptr<nn::Sequential> make_mlp(int64_t in, int64_t hidden, int64_t out, uint64_t seed) {
  Generator gen(seed);
  auto mlp = std::make_shared<nn::Sequential>();
  mlp->add(std::make_shared<nn::Linear>(in, hidden, true, &gen));
  mlp->add(std::make_shared<nn::Activation>("tanh"));
  mlp->add(std::make_shared<nn::Linear>(hidden, hidden, true, &gen));
  mlp->add(std::make_shared<nn::Activation>("tanh"));
  mlp->add(std::make_shared<nn::Linear>(hidden, out, true, &gen));
  return mlp;
}

namespace {

std::vector<float> concatenated(const std::vector<std::pair<std::string, Tensor>>& named) {
  std::vector<float> out;
  for (const auto& [name, t] : named) {
    const auto values = t.to_vector<float>();
    out.insert(out.end(), values.begin(), values.end());
  }
  return out;
}

}  // namespace

std::vector<float> flat_parameters(const nn::Module& module) { return concatenated(module.named_parameters()); }
std::vector<float> flat_buffers(const nn::Module& module) { return concatenated(module.named_buffers()); }

double max_relative_difference(const std::vector<double>& a, const std::vector<double>& b) {
  if (a.size() != b.size()) return INFINITY;
  double diff = 0.0, scale = 0.0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::fabs(a[i] - b[i]));
    scale = std::max(scale, std::fabs(b[i]));
  }
  return scale == 0.0 ? diff : diff / scale;
}

double max_relative_difference(const std::vector<float>& a, const std::vector<float>& b) {
  return max_relative_difference(std::vector<double>(a.begin(), a.end()), std::vector<double>(b.begin(), b.end()));
}

double max_relative_difference(const Tensor& a, const Tensor& b) {
  if (a.shape() != b.shape()) return INFINITY;
  return max_relative_difference(a.to_vector<double>(), b.to_vector<double>());
}

double global_mean_loss(const Tensor& local_loss, dist::Communicator& communicator) {
  Tensor value = local_loss.detach().reshape({1}).contiguous().to(DType::f64).clone_data();
  communicator.all_reduce(value, dist::ReduceOp::sum, true, "loss").synchronize();
  return value.to(Device::cpu()).item();
}

}  // namespace tessera::mpitest
