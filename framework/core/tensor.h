// Tensor: a typed, strided view of a device buffer, with the autograd fields it carries.
//
// defines: tessera::Tensor, TensorImpl, Storage, Shape, shape_str, shape_numel,
//          contiguous_strides, copy_into
//
// A Tensor is a shared handle (copying it shares the data, like torch.Tensor). Its TensorImpl
// holds the storage, an element offset, shape and strides (in elements), the dtype, and the
// autograd fields (requires_grad, grad_fn, grad, grad-ready hooks). Views share storage.
//
// Methods come in three groups:
//  * metadata, factories and raw data access (defined in core: tensor.cpp);
//  * autograd accessors such as grad() and backward() (defined in framework/autograd);
//  * differentiable conveniences such as reshape() and sum() (defined in framework/ops; they
//    forward to the free functions of the same name there).
// The header declares all three so model code can write `x.reshape({B, T, C})`; core itself
// calls only the first group.
#pragma once

#include <cstdint>
#include <functional>
#include <initializer_list>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "framework/core/device.h"
#include "framework/core/dtype.h"

namespace tessera {

namespace autograd {
class Node;
}

using Shape = std::vector<int64_t>;

std::string shape_str(const Shape& shape);  // "[2, 3]"
int64_t shape_numel(const Shape& shape);
Shape contiguous_strides(const Shape& shape);

// A buffer on one device. Freed (returned to its allocator) when the last tensor using it goes.
class Storage {
 public:
  Storage(size_t nbytes, Device device);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
};

class Tensor;
using GradReadyHook = std::function<void(const Tensor& parameter)>;

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  int64_t offset = 0;  // in elements
  Shape shape;
  Shape strides;  // in elements
  DType dtype = DType::f32;

  // Autograd (see framework/autograd). A leaf has no grad_fn; a non-leaf records the node that
  // produced it and which of that node's outputs it is.
  bool requires_grad = false;
  std::shared_ptr<autograd::Node> grad_fn;
  uint32_t output_nr = 0;
  std::weak_ptr<autograd::Node> grad_accumulator;
  std::shared_ptr<TensorImpl> grad;
  std::vector<GradReadyHook> grad_ready_hooks;  // fired once the leaf's gradient is final
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // ---- factories (core) ----
  static Tensor empty(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor full(const Shape& shape, double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor zeros(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor ones(const Shape& shape, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor scalar(double value, DType dtype = DType::f32, Device device = Device::cpu());
  static Tensor arange(int64_t n, DType dtype = DType::i64, Device device = Device::cpu());
  // Copies `values` (row-major, shape.numel() of them) converted to `dtype`.
  static Tensor from_vector(const std::vector<double>& values, const Shape& shape, DType dtype = DType::f32,
                            Device device = Device::cpu());
  static Tensor from_vector(const std::vector<float>& values, const Shape& shape, Device device = Device::cpu());
  static Tensor from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device = Device::cpu());

  // ---- metadata and raw access (core) ----
  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl_->shape; }
  const Shape& strides() const { return impl_->strides; }
  int64_t dim() const { return static_cast<int64_t>(impl_->shape.size()); }
  int64_t size(int64_t d) const;    // negative d counts from the end
  int64_t stride(int64_t d) const;
  int64_t numel() const { return shape_numel(impl_->shape); }
  DType dtype() const { return impl_->dtype; }
  Device device() const { return impl_->storage->device(); }
  int64_t storage_offset() const { return impl_->offset; }
  bool is_contiguous() const;
  size_t nbytes() const { return static_cast<size_t>(numel()) * dtype_size(dtype()); }
  void* data_ptr() const;
  template <typename T>
  T* data() const;  // checks that T matches dtype()
  const std::shared_ptr<Storage>& storage() const { return impl_->storage; }
  TensorImpl* impl() const { return impl_.get(); }
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool same(const Tensor& other) const { return impl_ == other.impl_; }

  // A view sharing storage with no autograd history (ops build differentiable views on it).
  Tensor as_strided(const Shape& shape, const Shape& strides, int64_t offset) const;
  // A new tensor with this one's data, contiguous, on `device`; no autograd history.
  Tensor to(Device device) const;
  // A contiguous copy with no autograd history (same device and dtype).
  Tensor clone_data() const;
  // Host copy of the values converted to T (double, float, int64_t).
  template <typename T>
  std::vector<T> to_vector() const;
  double item() const;  // the single value of a one-element tensor
  std::string str(int64_t max_values = 8) const;

  // ---- autograd (framework/autograd/variable.cpp) ----
  bool requires_grad() const;
  // Only on leaves: marks the tensor as a parameter-like leaf whose .grad is accumulated.
  Tensor& set_requires_grad(bool requires_grad);
  bool is_leaf() const;
  const std::shared_ptr<autograd::Node>& grad_fn() const;
  Tensor grad() const;  // undefined until a backward pass reaches this leaf
  void set_grad(const Tensor& grad) const;
  void zero_grad() const;  // drops the gradient (PyTorch's set_to_none)
  // Calls `hook(*this)` whenever this leaf's gradient is final in a backward pass.
  void register_grad_ready_hook(GradReadyHook hook) const;
  Tensor detach() const;  // shares data, no history
  void backward(const Tensor& gradient = Tensor(), bool retain_graph = false, bool create_graph = false) const;

  // ---- differentiable conveniences (framework/ops) ----
  Tensor reshape(const Shape& shape) const;
  Tensor flatten(int64_t start_dim = 0, int64_t end_dim = -1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor transpose(int64_t dim0, int64_t dim1) const;
  Tensor slice(int64_t dim, int64_t start, int64_t end, int64_t step = 1) const;
  Tensor expand(const Shape& shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor contiguous() const;
  Tensor to(DType dtype) const;
  Tensor sum() const;
  Tensor sum(const std::vector<int64_t>& dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const std::vector<int64_t>& dims, bool keepdim = false) const;

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream& operator<<(std::ostream& out, const Tensor& t);

// Copies src into dst elementwise (same shape; any strides, dtypes and devices). Raw: records
// no autograd history.
void copy_into(const Tensor& dst, const Tensor& src);

}  // namespace tessera
