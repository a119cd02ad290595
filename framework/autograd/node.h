// The autograd graph: nodes (one per recorded operation), edges, saved tensors.
//
// defines: tessera::autograd::Node, Edge, SavedTensor, AccumulateGrad, OutputMeta,
//          gradient_edge, grad_accumulator, needs_grad, record, grad_sum, grad_add_inplace
//
// Every differentiable op that runs while grad mode is on and one of its inputs requires a
// gradient creates a Node subclass holding what its backward needs (SavedTensor fields), with
// one Edge per input pointing at the node that produced that input (or at the input's
// AccumulateGrad node if it is a leaf). `record(outputs, node)` attaches the node to the op's
// outputs. A node's `apply` receives one gradient per output of the op and returns one per
// input. Backward formulas are written with differentiable ops, so running them with grad mode
// on (create_graph) builds the graph of the gradient: that gives second derivatives.
//
// A node that saves one of its own outputs would own itself through the output's grad_fn;
// SavedTensor breaks that cycle by keeping the output's data and a weak reference to the node,
// and rebuilds the full tensor on unpack.
#pragma once

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "framework/autograd/grad_mode.h"
#include "framework/core/tensor.h"

namespace tessera::autograd {

class Node;

struct Edge {
  std::shared_ptr<Node> fn;
  uint32_t input_nr = 0;
  bool valid() const { return fn != nullptr; }
};

struct OutputMeta {
  Shape shape;
  DType dtype = DType::f32;
  Device device;
};

class Node : public std::enable_shared_from_this<Node> {
 public:
  Node();
  virtual ~Node() = default;

  // grads[i] is the gradient of the op's output i (never undefined: the engine fills zeros).
  // Returns one gradient per next edge; an undefined tensor means "no gradient".
  virtual std::vector<Tensor> apply(std::vector<Tensor>& grads) = 0;
  virtual std::string name() const = 0;
  // Frees saved tensors once backward is done with the node (unless the graph is retained).
  virtual void release_saved() {}

  bool needs_input_grad(size_t input) const { return input < next_edges.size() && next_edges[input].valid(); }
  // Nodes are executed newest first; this order also makes parameter gradients become final in
  // reverse registration order, which the data-parallel buckets rely on.
  uint64_t sequence_nr() const { return sequence_nr_; }

  std::vector<Edge> next_edges;
  std::vector<OutputMeta> outputs;

 private:
  uint64_t sequence_nr_;
};

// The sink for a leaf: adds the arriving gradient into the leaf's .grad and fires its hooks.
class AccumulateGrad : public Node {
 public:
  explicit AccumulateGrad(std::shared_ptr<TensorImpl> variable) : variable(std::move(variable)) {}
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override;
  std::string name() const override { return "AccumulateGrad"; }

  std::shared_ptr<TensorImpl> variable;
};

class SavedTensor {
 public:
  SavedTensor() = default;
  // `is_output`: the tensor is an output of the node that saves it (save it after record()).
  SavedTensor(const Tensor& t, bool is_output);
  Tensor unpack() const;
  bool defined() const { return data_.defined(); }
  void reset() {
    data_ = Tensor();
    fn_.reset();
  }

 private:
  Tensor data_;  // the tensor itself, or (for an output) its data without history
  std::weak_ptr<Node> fn_;
  uint32_t output_nr_ = 0;
  bool is_output_ = false;
  bool requires_grad_ = false;
};

// The edge a gradient for `t` flows into (invalid when t needs no gradient).
Edge gradient_edge(const Tensor& t);
std::shared_ptr<Node> grad_accumulator(const Tensor& leaf);

// True when grad mode is on and any defined input requires a gradient.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Connects `node` to `inputs` (next edges) and to `outputs` (their grad_fn); returns node.
template <typename NodeT>
std::shared_ptr<NodeT> make_node(const std::vector<Tensor>& inputs) {
  auto node = std::make_shared<NodeT>();
  node->next_edges.reserve(inputs.size());
  for (const Tensor& t : inputs) node->next_edges.push_back(t.defined() ? gradient_edge(t) : Edge{});
  return node;
}
void record(const std::vector<Tensor>& outputs, const std::shared_ptr<Node>& node);
inline void record(const Tensor& output, const std::shared_ptr<Node>& node) {
  record(std::vector<Tensor>{output}, node);
}

// Implemented by the ops layer (framework/ops/elementwise.cpp): the engine needs to add
// gradients. grad_sum is differentiable (used under create_graph); grad_add_inplace is not.
Tensor grad_sum(const Tensor& a, const Tensor& b);
void grad_add_inplace(const Tensor& accumulator, const Tensor& value);
// The gradient for an output that received none: zeros of the output's shape.
Tensor zeros_for(const OutputMeta& meta);

}  // namespace tessera::autograd
