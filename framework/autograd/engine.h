// Running the backward pass.
//
// defines: tessera::autograd::backward, tessera::autograd::grad
//
// Both walk the graph from the roots: count how many edges reach each node, then execute
// nodes whose every consumer has delivered its gradient, newest node first (a priority queue
// on sequence numbers). Gradients arriving at the same input are summed before the node runs,
// so an AccumulateGrad runs once per pass: when it does, the leaf's gradient is final and its
// grad-ready hooks fire (the data-parallel reducer starts bucket all-reduces there).
// `backward` accumulates into the leaves' .grad; `grad` returns the gradients of the given
// inputs instead and runs only the part of the graph that leads to them (WGAN-GP's penalty).
// With create_graph, backward formulas run with grad mode on, so the returned gradients have
// history and can be differentiated again. Unless retain_graph (default: create_graph), saved
// tensors are freed as nodes finish.
#pragma once

#include <optional>
#include <vector>

#include "framework/core/tensor.h"

namespace tessera::autograd {

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads = {},
              std::optional<bool> retain_graph = std::nullopt, bool create_graph = false);

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& output_grads = {}, std::optional<bool> retain_graph = std::nullopt,
                         bool create_graph = false, bool allow_unused = false);

}  // namespace tessera::autograd
