// Core part of Tensor: storage, factories, metadata and raw copies (see tensor.h).
#include "framework/core/tensor.h"

#include <cmath>
#include <cstring>
#include <iomanip>
#include <sstream>

#include "framework/core/allocator.h"
#include "framework/core/cuda_context.h"
#include "framework/core/tensor_layout.h"
#include "kernels/copy.h"

#ifdef TESSERA_WITH_CUDA
#include "framework/core/cuda_check.h"
#endif

namespace tessera {

std::string shape_str(const Shape& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) {
    if (i) s += ", ";
    s += std::to_string(shape[i]);
  }
  return s + "]";
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape strides(shape.size());
  int64_t s = 1;
  for (int64_t i = static_cast<int64_t>(shape.size()) - 1; i >= 0; --i) {
    strides[i] = s;
    s *= std::max<int64_t>(shape[i], 1);
  }
  return strides;
}

kernels::Layout layout_of(const Shape& shape, const Shape& strides) {
  TESSERA_CHECK(shape.size() <= static_cast<size_t>(kernels::kMaxDims), "tensors of more than ",
                kernels::kMaxDims, " dimensions are not supported (got ", shape_str(shape), ")");
  kernels::Layout l;
  l.ndim = static_cast<int>(shape.size());
  for (int i = 0; i < l.ndim; ++i) {
    l.sizes[i] = shape[i];
    l.strides[i] = strides[i];
  }
  return l;
}

kernels::Layout layout_of(const Tensor& t) { return layout_of(t.shape(), t.strides()); }

void* stream_for(const Tensor& t) {
  return t.device().is_cuda() ? cuda::compute_stream(t.device().index) : nullptr;
}

// ---- Storage ----

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
  if (device.is_cpu()) {
    data_ = host_allocate(nbytes);
  } else {
    require_device(device);
    data_ = cuda_allocate(nbytes, device.index, cuda::compute_stream(device.index));
  }
}

Storage::~Storage() {
  if (device_.is_cpu()) {
    host_free(data_, nbytes_);
  } else {
    cuda_free(data_);
  }
}

// ---- factories ----

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  for (int64_t d : shape) TESSERA_CHECK(d >= 0, "negative dimension in shape ", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(static_cast<size_t>(shape_numel(shape)) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::full(const Shape& shape, double value, DType dtype, Device device) {
  Tensor t = empty(shape, dtype, device);
  if (device.is_cpu()) {
    kernels::fill_cpu(dtype, t.data_ptr(), t.numel(), value);
  } else {
#ifdef TESSERA_WITH_CUDA
    kernels::fill_cuda(dtype, t.data_ptr(), t.numel(), value, stream_for(t));
#endif
  }
  return t;
}

Tensor Tensor::zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0.0, dtype, device); }
Tensor Tensor::ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1.0, dtype, device); }
Tensor Tensor::scalar(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor Tensor::arange(int64_t n, DType dtype, Device device) {
  std::vector<double> values(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) values[i] = static_cast<double>(i);
  return from_vector(values, {n}, dtype, device);
}

namespace {
template <typename T>
Tensor host_tensor_from(const std::vector<T>& values, const Shape& shape, DType src_dtype, DType dtype,
                        Device device) {
  TESSERA_CHECK(static_cast<int64_t>(values.size()) == shape_numel(shape), "from_vector: ", values.size(),
                " values do not fill shape ", shape_str(shape));
  Tensor host = Tensor::empty(shape, dtype, Device::cpu());
  kernels::Layout l = layout_of(Shape{static_cast<int64_t>(values.size())}, Shape{1});
  kernels::copy_strided_cpu(src_dtype, values.data(), l, dtype, host.data_ptr(), l);
  return device.is_cpu() ? host : host.to(device);
}
}  // namespace

Tensor Tensor::from_vector(const std::vector<double>& values, const Shape& shape, DType dtype, Device device) {
  return host_tensor_from(values, shape, DType::f64, dtype, device);
}
Tensor Tensor::from_vector(const std::vector<float>& values, const Shape& shape, Device device) {
  return host_tensor_from(values, shape, DType::f32, DType::f32, device);
}
Tensor Tensor::from_vector(const std::vector<int64_t>& values, const Shape& shape, Device device) {
  return host_tensor_from(values, shape, DType::i64, DType::i64, device);
}

// ---- metadata ----

int64_t Tensor::size(int64_t d) const {
  const int64_t n = dim();
  TESSERA_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a tensor of shape ", shape_str(shape()));
  return impl_->shape[d < 0 ? d + n : d];
}

int64_t Tensor::stride(int64_t d) const {
  const int64_t n = dim();
  TESSERA_CHECK(d >= -n && d < n, "dimension ", d, " out of range for a tensor of shape ", shape_str(shape()));
  return impl_->strides[d < 0 ? d + n : d];
}

bool Tensor::is_contiguous() const {
  int64_t expected = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (impl_->shape[i] != 1 && impl_->strides[i] != expected) return false;
    expected *= impl_->shape[i];
  }
  return true;
}

void* Tensor::data_ptr() const {
  return static_cast<char*>(impl_->storage->data()) + impl_->offset * static_cast<int64_t>(dtype_size(dtype()));
}

template <typename T>
T* Tensor::data() const {
  constexpr DType expected = std::is_same_v<T, double>    ? DType::f64
                             : std::is_same_v<T, float>   ? DType::f32
                             : std::is_same_v<T, bf16>    ? DType::bf16
                             : std::is_same_v<T, f16>     ? DType::f16
                             : std::is_same_v<T, int64_t> ? DType::i64
                             : std::is_same_v<T, int32_t> ? DType::i32
                                                          : DType::u8;
  TESSERA_CHECK(dtype() == expected, "data<", dtype_name(expected), ">() called on a ", dtype_name(dtype()),
                " tensor");
  return static_cast<T*>(data_ptr());
}
template double* Tensor::data<double>() const;
template float* Tensor::data<float>() const;
template bf16* Tensor::data<bf16>() const;
template f16* Tensor::data<f16>() const;
template int64_t* Tensor::data<int64_t>() const;
template int32_t* Tensor::data<int32_t>() const;
template uint8_t* Tensor::data<uint8_t>() const;

Tensor Tensor::as_strided(const Shape& shape, const Shape& strides, int64_t offset) const {
  TESSERA_ASSERT(shape.size() == strides.size());
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = impl_->storage;
  impl->offset = offset;
  impl->shape = shape;
  impl->strides = strides;
  impl->dtype = impl_->dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::to(Device device) const {
  Tensor out = empty(shape(), dtype(), device);
  copy_into(out, *this);
  return out;
}

Tensor Tensor::clone_data() const { return to(device()); }

template <typename T>
std::vector<T> Tensor::to_vector() const {
  constexpr DType want = std::is_same_v<T, double> ? DType::f64 : std::is_same_v<T, float> ? DType::f32 : DType::i64;
  Tensor host = empty(shape(), want, Device::cpu());
  copy_into(host, *this);
  std::vector<T> out(static_cast<size_t>(numel()));
  if (!out.empty()) std::memcpy(out.data(), host.data_ptr(), out.size() * sizeof(T));
  return out;
}
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;

double Tensor::item() const {
  TESSERA_CHECK(numel() == 1, "item() needs a tensor with one element, got shape ", shape_str(shape()));
  return to_vector<double>()[0];
}

std::string Tensor::str(int64_t max_values) const {
  if (!defined()) return "Tensor(undefined)";
  std::ostringstream out;
  out << "Tensor(" << shape_str(shape()) << ", " << dtype_name(dtype()) << ", " << device().str() << ")";
  if (numel() > 0) {
    const auto values = to_vector<double>();
    out << " [";
    for (int64_t i = 0; i < std::min<int64_t>(numel(), max_values); ++i) out << (i ? ", " : "") << values[i];
    if (numel() > max_values) out << ", ...";
    out << "]";
  }
  return out.str();
}

std::ostream& operator<<(std::ostream& out, const Tensor& t) { return out << t.str(); }

// ---- copies ----

void copy_into(const Tensor& dst, const Tensor& src) {
  TESSERA_CHECK(dst.shape() == src.shape(), "copy: shapes ", shape_str(dst.shape()), " (destination) and ",
                shape_str(src.shape()), " (source) differ");
  if (dst.numel() == 0) return;
  const Device dd = dst.device(), sd = src.device();
  if (dd.is_cpu() && sd.is_cpu()) {
    kernels::copy_strided_cpu(src.dtype(), src.data_ptr(), layout_of(src), dst.dtype(), dst.data_ptr(),
                              layout_of(dst));
    return;
  }
#ifdef TESSERA_WITH_CUDA
  if (dd == sd) {
    kernels::copy_strided_cuda(src.dtype(), src.data_ptr(), layout_of(src), dst.dtype(), dst.data_ptr(),
                               layout_of(dst), stream_for(dst));
    return;
  }
  // Across devices: make the source contiguous where it lives, move the bytes, then convert
  // and scatter on the destination device.
  const Tensor packed = src.is_contiguous() ? src : src.clone_data();
  if (sd.is_cuda() && dd.is_cuda()) {
    Tensor staged = Tensor::empty(src.shape(), src.dtype(), dd);
    cuda::synchronize(sd.index);
    TESSERA_CUDA_CHECK(cudaMemcpyPeerAsync(staged.data_ptr(), dd.index, packed.data_ptr(), sd.index,
                                           packed.nbytes(), static_cast<cudaStream_t>(stream_for(staged))));
    copy_into(dst, staged);
    return;
  }
  if (sd.is_cuda()) {  // device -> host
    Tensor staged = dst.is_contiguous() && dst.dtype() == src.dtype() ? dst : Tensor::empty(src.shape(), src.dtype(), dd);
    auto stream = static_cast<cudaStream_t>(stream_for(packed));
    TESSERA_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), packed.data_ptr(), packed.nbytes(),
                                       cudaMemcpyDeviceToHost, stream));
    TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream));
    if (!staged.same(dst)) copy_into(dst, staged);
    return;
  }
  // host -> device
  Tensor staged = dst.is_contiguous() && dst.dtype() == src.dtype() ? dst : Tensor::empty(src.shape(), src.dtype(), dd);
  auto stream = static_cast<cudaStream_t>(stream_for(staged));
  TESSERA_CUDA_CHECK(cudaMemcpyAsync(staged.data_ptr(), packed.data_ptr(), packed.nbytes(), cudaMemcpyHostToDevice,
                                     stream));
  TESSERA_CUDA_CHECK(cudaStreamSynchronize(stream));  // the host buffer may be freed after return
  if (!staged.same(dst)) copy_into(dst, staged);
#else
  detail::throw_error("copy to or from a CUDA tensor in a build without the CUDA backend");
#endif
}

}  // namespace tessera
