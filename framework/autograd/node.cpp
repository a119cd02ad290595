#include "framework/autograd/node.h"

#include "framework/core/error.h"

namespace tessera::autograd {

namespace {
std::atomic<uint64_t> next_sequence_nr{0};
thread_local bool grad_enabled = true;
}  // namespace

bool GradMode::is_enabled() { return grad_enabled; }
void GradMode::set_enabled(bool enabled) { grad_enabled = enabled; }

Node::Node() : sequence_nr_(next_sequence_nr.fetch_add(1)) {}

std::vector<Tensor> AccumulateGrad::apply(std::vector<Tensor>& grads) {
  Tensor incoming = std::move(grads[0]);
  Tensor var(variable);
  Tensor current = var.grad();
  if (GradMode::is_enabled()) {  // create_graph: keep the gradient's own history
    var.set_grad(current.defined() ? grad_sum(current, incoming) : incoming);
  } else if (!current.defined()) {
    // Take the tensor if nothing else refers to it; otherwise copy, so a later in-place
    // accumulation cannot change a tensor someone else holds.
    const bool unique = incoming.impl_ptr().use_count() == 1 && incoming.storage().use_count() == 1 &&
                        incoming.is_contiguous() && incoming.storage_offset() == 0;
    var.set_grad(unique ? incoming : incoming.clone_data());
  } else {
    grad_add_inplace(current, incoming);
  }
  for (const auto& hook : variable->grad_ready_hooks) hook(var);
  return {};
}

SavedTensor::SavedTensor(const Tensor& t, bool is_output) : is_output_(is_output) {
  if (!t.defined()) return;
  requires_grad_ = t.requires_grad();
  // Saving an output before record() would keep the output (and through it the node) alive
  // from inside the node: a reference cycle.
  TESSERA_ASSERT(!is_output || t.grad_fn(), "save an op's output after autograd::record()");
  if (is_output) {
    data_ = t.detach();
    fn_ = t.grad_fn();
    output_nr_ = t.impl()->output_nr;
  } else {
    data_ = t;
  }
}

Tensor SavedTensor::unpack() const {
  if (!data_.defined() || !is_output_) return data_;
  auto fn = fn_.lock();
  if (!fn) return data_;
  Tensor t = data_.as_strided(data_.shape(), data_.strides(), data_.storage_offset());
  t.impl()->requires_grad = requires_grad_;
  t.impl()->grad_fn = std::move(fn);
  t.impl()->output_nr = output_nr_;
  return t;
}

std::shared_ptr<Node> grad_accumulator(const Tensor& leaf) {
  TensorImpl* impl = leaf.impl();
  auto acc = impl->grad_accumulator.lock();
  if (!acc) {
    acc = std::make_shared<AccumulateGrad>(leaf.impl_ptr());
    acc->outputs.push_back(OutputMeta{leaf.shape(), leaf.dtype(), leaf.device()});
    impl->grad_accumulator = acc;
  }
  return acc;
}

Edge gradient_edge(const Tensor& t) {
  if (t.grad_fn()) return Edge{t.grad_fn(), t.impl()->output_nr};
  if (t.requires_grad()) return Edge{grad_accumulator(t), 0};
  return Edge{};
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.defined() && t.requires_grad()) return true;
  return false;
}

void record(const std::vector<Tensor>& outputs, const std::shared_ptr<Node>& node) {
  node->outputs.clear();
  for (uint32_t i = 0; i < outputs.size(); ++i) {
    const Tensor& out = outputs[i];
    node->outputs.push_back(OutputMeta{out.shape(), out.dtype(), out.device()});
    TensorImpl* impl = out.impl();
    impl->requires_grad = true;
    impl->grad_fn = node;
    impl->output_nr = i;
  }
}

Tensor zeros_for(const OutputMeta& meta) { return Tensor::zeros(meta.shape, meta.dtype, meta.device); }

}  // namespace tessera::autograd
