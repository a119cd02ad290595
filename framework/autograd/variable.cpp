// The autograd accessors of Tensor (declared in framework/core/tensor.h).
#include "framework/autograd/engine.h"
#include "framework/autograd/node.h"
#include "framework/core/error.h"

namespace tessera {

bool Tensor::requires_grad() const { return impl_->requires_grad || impl_->grad_fn != nullptr; }

Tensor& Tensor::set_requires_grad(bool requires_grad) {
  TESSERA_CHECK(is_leaf(), "set_requires_grad: only leaf tensors can be marked (this one was produced by ",
                impl_->grad_fn->name(), "); use detach() first");
  TESSERA_CHECK(!requires_grad || is_floating_point(dtype()), "set_requires_grad: a ", dtype_name(dtype()),
                " tensor cannot require a gradient (floating-point only)");
  impl_->requires_grad = requires_grad;
  return *this;
}

bool Tensor::is_leaf() const { return impl_->grad_fn == nullptr; }

const std::shared_ptr<autograd::Node>& Tensor::grad_fn() const { return impl_->grad_fn; }

Tensor Tensor::grad() const { return impl_->grad ? Tensor(impl_->grad) : Tensor(); }

void Tensor::set_grad(const Tensor& grad) const {
  if (grad.defined())
    TESSERA_CHECK(grad.shape() == shape(), "set_grad: gradient of shape ", shape_str(grad.shape()),
                  " for a tensor of shape ", shape_str(shape()));
  impl_->grad = grad.defined() ? grad.impl_ptr() : nullptr;
}

void Tensor::zero_grad() const { impl_->grad.reset(); }

void Tensor::register_grad_ready_hook(GradReadyHook hook) const {
  TESSERA_CHECK(is_leaf(), "grad-ready hooks can only be registered on leaf tensors");
  impl_->grad_ready_hooks.push_back(std::move(hook));
}

Tensor Tensor::detach() const { return as_strided(shape(), strides(), storage_offset()); }

void Tensor::backward(const Tensor& gradient, bool retain_graph, bool create_graph) const {
  autograd::backward({*this}, {gradient}, retain_graph || create_graph, create_graph);
}

}  // namespace tessera
