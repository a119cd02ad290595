// all_reduce_sum and synchronize_batch_norm (sync_batch_norm.h).
#include "framework/dist/sync_batch_norm.h"

#include <utility>
#include <vector>

#include "framework/autograd/node.h"
#include "framework/core/error.h"
#include "framework/nn/batch_norm.h"

namespace tessera::dist {
namespace {

// d(sum over ranks of x_r)/d(x_r) is the sum over ranks of the output gradients.
struct AllReduceSumBackward : autograd::Node {
  Communicator* communicator = nullptr;
  std::string collective;
  std::string name() const override { return "AllReduceSumBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    return {all_reduce_sum(grads[0], *communicator, collective + " (backward)")};
  }
};

}  // namespace

Tensor all_reduce_sum(const Tensor& x, Communicator& communicator, const std::string& name) {
  TESSERA_CHECK(x.defined(), "all_reduce_sum (", name, "): the input is undefined");
  Tensor out = x.clone_data();  // contiguous, no history; x stays as it was
  communicator.all_reduce(out, ReduceOp::sum, false, name).wait();
  if (autograd::needs_grad({x})) {
    auto node = autograd::make_node<AllReduceSumBackward>({x});
    node->communicator = &communicator;
    node->collective = name;
    autograd::record(out, node);
  }
  return out;
}

int64_t synchronize_batch_norm(nn::Module& module, Communicator& communicator) {
  if (communicator.world_size() == 1) return 0;
  std::vector<std::pair<std::string, nn::Module*>> modules = {{"", &module}};
  for (const auto& [path, child] : module.named_modules()) modules.emplace_back(path, child.get());
  int64_t switched = 0;
  for (const auto& [path, m] : modules) {
    auto* layer = dynamic_cast<nn::BatchNorm2d*>(m);
    if (layer == nullptr) continue;
    const std::string name = path.empty() ? "sync_batchnorm" : "sync_batchnorm " + path;
    layer->set_replica_sum([&communicator, name](const Tensor& t) { return all_reduce_sum(t, communicator, name); });
    ++switched;
  }
  return switched;
}

}  // namespace tessera::dist
