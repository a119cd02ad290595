#include "framework/autograd/engine.h"

#include <queue>
#include <unordered_map>
#include <unordered_set>

#include "framework/autograd/node.h"
#include "framework/core/error.h"

namespace tessera::autograd {
namespace {

struct NewestFirst {
  bool operator()(const Node* a, const Node* b) const { return a->sequence_nr() < b->sequence_nr(); }
};

struct Capture {
  Node* fn;
  uint32_t input_nr;
};

// One backward pass. With `captures` empty it accumulates into leaves; otherwise it only
// collects the gradients arriving at the captured edges and runs no AccumulateGrad.
class GraphTask {
 public:
  GraphTask(bool keep_graph, bool create_graph, std::vector<Capture> captures)
      : keep_graph_(keep_graph), create_graph_(create_graph), captures_(std::move(captures)) {}

  std::vector<Tensor> run(const std::vector<Edge>& roots, std::vector<Tensor> root_grads) {
    count_dependencies(roots);
    if (!captures_.empty()) mark_needed(roots);
    for (size_t i = 0; i < roots.size(); ++i) deliver(roots[i], std::move(root_grads[i]));
    std::priority_queue<Node*, std::vector<Node*>, NewestFirst> ready;
    for (const Edge& e : roots)
      if (dependencies_[e.fn.get()] == 0 && queued_.insert(e.fn.get()).second) ready.push(e.fn.get());

    std::vector<Tensor> captured(captures_.size());
    while (!ready.empty()) {
      Node* node = ready.top();
      ready.pop();
      std::vector<Tensor> grads = take_buffer(node);
      for (size_t c = 0; c < captures_.size(); ++c)
        if (captures_[c].fn == node) captured[c] = grads[captures_[c].input_nr];
      if (!should_execute(node)) continue;

      std::vector<Tensor> input_grads = node->apply(grads);
      TESSERA_ASSERT(input_grads.empty() || input_grads.size() == node->next_edges.size(), node->name(),
                     " returned ", input_grads.size(), " gradients for ", node->next_edges.size(), " inputs");
      if (!keep_graph_) node->release_saved();
      for (size_t i = 0; i < input_grads.size(); ++i) {
        const Edge& edge = node->next_edges[i];
        if (!edge.valid()) continue;
        if (input_grads[i].defined()) {
          TESSERA_ASSERT(input_grads[i].shape() == edge.fn->outputs[edge.input_nr].shape, node->name(),
                         " produced a gradient of shape ", shape_str(input_grads[i].shape()), " for an input of shape ",
                         shape_str(edge.fn->outputs[edge.input_nr].shape));
          deliver(edge, std::move(input_grads[i]));
        }
      }
      for (const Edge& edge : node->next_edges) {
        if (!edge.valid()) continue;
        if (--dependencies_[edge.fn.get()] == 0 && queued_.insert(edge.fn.get()).second) ready.push(edge.fn.get());
      }
    }
    return captured;
  }

 private:
  void count_dependencies(const std::vector<Edge>& roots) {
    std::vector<Node*> stack;
    std::unordered_set<Node*> seen;
    for (const Edge& e : roots) {
      if (seen.insert(e.fn.get()).second) stack.push_back(e.fn.get());
      nodes_.emplace(e.fn.get(), e.fn);
    }
    while (!stack.empty()) {
      Node* node = stack.back();
      stack.pop_back();
      for (const Edge& edge : node->next_edges) {
        if (!edge.valid()) continue;
        ++dependencies_[edge.fn.get()];
        nodes_.emplace(edge.fn.get(), edge.fn);
        if (seen.insert(edge.fn.get()).second) stack.push_back(edge.fn.get());
      }
    }
  }

  // For grad(): a node runs only if one of its edges leads to a captured node.
  void mark_needed(const std::vector<Edge>& roots) {
    std::unordered_set<Node*> targets;
    for (const Capture& c : captures_) targets.insert(c.fn);
    std::unordered_map<Node*, int> state;  // 0 unvisited, 1 in progress, 2 done
    std::vector<std::pair<Node*, size_t>> stack;
    for (const Edge& root : roots) {
      if (state[root.fn.get()] != 0) continue;
      stack.push_back({root.fn.get(), 0});
      state[root.fn.get()] = 1;
      while (!stack.empty()) {
        auto& [node, next] = stack.back();
        if (next < node->next_edges.size()) {
          Node* child = node->next_edges[next++].fn.get();
          if (child != nullptr && state[child] == 0) {
            state[child] = 1;
            stack.push_back({child, 0});
          }
          continue;
        }
        bool needed = false;
        for (const Edge& e : node->next_edges)
          if (e.valid() && (targets.count(e.fn.get()) || needed_.count(e.fn.get()))) needed = true;
        if (needed) needed_.insert(node);
        state[node] = 2;
        stack.pop_back();
      }
    }
  }

  bool should_execute(Node* node) const {
    if (captures_.empty()) return true;
    return needed_.count(node) > 0;
  }

  void deliver(const Edge& edge, Tensor grad) {
    auto& buffer = buffers_[edge.fn.get()];
    if (buffer.empty()) buffer.resize(edge.fn->outputs.empty() ? 1 : edge.fn->outputs.size());
    Tensor& slot = buffer[edge.input_nr];
    slot = slot.defined() ? grad_sum(slot, grad) : std::move(grad);
  }

  std::vector<Tensor> take_buffer(Node* node) {
    std::vector<Tensor> grads = std::move(buffers_[node]);
    buffers_.erase(node);
    const size_t n = node->outputs.empty() ? 1 : node->outputs.size();
    grads.resize(n);
    for (size_t i = 0; i < n; ++i)
      if (!grads[i].defined() && i < node->outputs.size()) grads[i] = zeros_for(node->outputs[i]);
    return grads;
  }

  bool keep_graph_;
  bool create_graph_;
  std::vector<Capture> captures_;
  std::unordered_map<Node*, std::shared_ptr<Node>> nodes_;  // keeps nodes alive during the pass
  std::unordered_map<Node*, int> dependencies_;
  std::unordered_map<Node*, std::vector<Tensor>> buffers_;
  std::unordered_set<Node*> queued_;
  std::unordered_set<Node*> needed_;
};

std::vector<Tensor> root_gradients(const std::vector<Tensor>& roots, const std::vector<Tensor>& given) {
  TESSERA_CHECK(given.empty() || given.size() == roots.size(), "backward: ", given.size(), " gradients given for ",
                roots.size(), " outputs");
  std::vector<Tensor> grads(roots.size());
  for (size_t i = 0; i < roots.size(); ++i) {
    if (!given.empty() && given[i].defined()) {
      TESSERA_CHECK(given[i].shape() == roots[i].shape(), "backward: gradient of shape ", shape_str(given[i].shape()),
                    " given for an output of shape ", shape_str(roots[i].shape()));
      grads[i] = given[i];
    } else {
      TESSERA_CHECK(roots[i].numel() == 1, "backward: a gradient must be given for output ", i, " of shape ",
                    shape_str(roots[i].shape()), " (implicit gradients only for one-element outputs)");
      grads[i] = Tensor::ones(roots[i].shape(), roots[i].dtype(), roots[i].device());
    }
  }
  return grads;
}

std::vector<Edge> root_edges(const std::vector<Tensor>& roots) {
  std::vector<Edge> edges;
  for (size_t i = 0; i < roots.size(); ++i) {
    Edge e = gradient_edge(roots[i]);
    TESSERA_CHECK(e.valid(), "backward: output ", i, " does not require grad and has no grad_fn "
                  "(was it computed under NoGradGuard, or from tensors that do not require grad?)");
    edges.push_back(e);
  }
  return edges;
}

}  // namespace

void backward(const std::vector<Tensor>& roots, const std::vector<Tensor>& root_grads,
              std::optional<bool> retain_graph, bool create_graph) {
  const bool keep = retain_graph.value_or(create_graph);
  std::vector<Edge> edges = root_edges(roots);
  std::vector<Tensor> grads = root_gradients(roots, root_grads);
  struct Restore {
    bool previous;
    ~Restore() { GradMode::set_enabled(previous); }
  } restore{GradMode::is_enabled()};
  GradMode::set_enabled(create_graph);
  GraphTask(keep, create_graph, {}).run(edges, std::move(grads));
}

std::vector<Tensor> grad(const std::vector<Tensor>& outputs, const std::vector<Tensor>& inputs,
                         const std::vector<Tensor>& output_grads, std::optional<bool> retain_graph, bool create_graph,
                         bool allow_unused) {
  const bool keep = retain_graph.value_or(create_graph);
  std::vector<Edge> edges = root_edges(outputs);
  std::vector<Tensor> grads = root_gradients(outputs, output_grads);
  std::vector<Capture> captures;
  for (size_t i = 0; i < inputs.size(); ++i) {
    Edge e = gradient_edge(inputs[i]);
    TESSERA_CHECK(e.valid(), "grad: input ", i, " does not require grad");
    captures.push_back(Capture{e.fn.get(), e.input_nr});
  }
  std::vector<Tensor> result;
  {
    struct Restore {
      bool previous;
      ~Restore() { GradMode::set_enabled(previous); }
    } restore{GradMode::is_enabled()};
    GradMode::set_enabled(create_graph);
    result = GraphTask(keep, create_graph, captures).run(edges, std::move(grads));
  }
  for (size_t i = 0; i < result.size(); ++i)
    TESSERA_CHECK(allow_unused || result[i].defined(), "grad: input ", i,
                  " is not reachable from the outputs (pass allow_unused=true to get an undefined gradient)");
  return result;
}

}  // namespace tessera::autograd
