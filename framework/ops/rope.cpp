// Rotary position embedding (framework/ops/rope.h): argument checks, kernel dispatch and the
// backward node (the inverse rotation, written as a rope call so it is differentiable again).
#include "framework/ops/rope.h"

#include <cmath>
#include <vector>

#include "framework/ops/common.h"
#include "kernels/rope.h"

namespace tessera {
namespace {

constexpr const char* kOp = "rope";

struct RopeBackward : autograd::Node {
  Tensor cos, sin;  // constants, no history
  bool inverse = false;
  std::string name() const override { return "RopeBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override { return {rope(grads[0], cos, sin, !inverse)}; }
  void release_saved() override {
    cos = Tensor();
    sin = Tensor();
  }
};

void check_table(const Tensor& x, const Tensor& table, const char* name) {
  ops::check_defined(kOp, table, name);
  ops::check_same_device(kOp, x, table);
  TESSERA_CHECK(table.dtype() == DType::f32, kOp, ": the ", name, " table must be f32, got ", dtype_name(table.dtype()));
  TESSERA_CHECK(table.dim() == 2 && table.size(0) == x.size(1) && table.size(1) == x.size(3) / 2, kOp, ": the ", name,
                " table must be [seq, head_dim / 2] = [", x.size(1), ", ", x.size(3) / 2, "] for x ",
                shape_str(x.shape()), ", got ", shape_str(table.shape()));
  TESSERA_CHECK(table.size(1) <= 1 || table.stride(1) == 1, kOp, ": the ", name, " table's rows must be contiguous");
  TESSERA_CHECK(!table.requires_grad(), kOp, ": the ", name, " table is a constant and must not require a gradient");
}

}  // namespace

Tensor rope(const Tensor& x_in, const Tensor& cos, const Tensor& sin, bool inverse) {
  ops::check_defined(kOp, x_in, "x");
  ops::check_floating(kOp, x_in);
  TESSERA_CHECK(x_in.dim() == 4 && x_in.size(3) % 2 == 0, kOp,
                ": expected x [batch, seq, heads, head_dim] with an even head_dim, got ", shape_str(x_in.shape()));
  check_table(x_in, cos, "cos");
  check_table(x_in, sin, "sin");
  TESSERA_CHECK(cos.stride(0) == sin.stride(0), kOp, ": the cos and sin tables must have the same row stride (",
                cos.stride(0), " vs ", sin.stride(0), ")");
  const Tensor x = x_in.size(3) <= 1 || x_in.stride(3) == 1 ? x_in : x_in.clone_data();
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  if (out.numel() > 0) {
    kernels::RopeArgs a;
    a.dtype = x.dtype();
    a.batch = x.size(0);
    a.seq = x.size(1);
    a.heads = x.size(2);
    a.head_dim = x.size(3);
    a.x = x.data_ptr();
    a.x_batch_stride = x.stride(0);
    a.x_seq_stride = x.stride(1);
    a.x_head_stride = x.stride(2);
    a.out = out.data_ptr();
    a.cos = static_cast<const float*>(cos.data_ptr());
    a.sin = static_cast<const float*>(sin.data_ptr());
    a.table_stride = cos.size(0) > 1 ? cos.stride(0) : cos.size(1);
    a.inverse = inverse;
    TESSERA_DEVICE_DISPATCH(x, kernels::rope_cpu(a), kernels::rope_cuda(a, stream_for(x)));
  }
  if (autograd::needs_grad({x_in})) {
    auto node = autograd::make_node<RopeBackward>({x_in});
    node->cos = cos;
    node->sin = sin;
    node->inverse = inverse;
    autograd::record(out, node);
  }
  return out;
}

RopeTables rope_tables(int64_t positions, int64_t head_dim, double theta, Device device) {
  TESSERA_CHECK(positions >= 0, "rope_tables: positions must not be negative, got ", positions);
  TESSERA_CHECK(head_dim > 0 && head_dim % 2 == 0, "rope_tables: head_dim must be positive and even, got ", head_dim);
  TESSERA_CHECK(theta > 0.0, "rope_tables: theta must be positive, got ", theta);
  const int64_t half = head_dim / 2;
  std::vector<float> cos_values(static_cast<size_t>(positions * half)), sin_values(cos_values.size());
  for (int64_t p = 0; p < positions; ++p) {
    for (int64_t i = 0; i < half; ++i) {
      const double inv_freq = std::pow(theta, -2.0 * static_cast<double>(i) / static_cast<double>(head_dim));
      const double angle = static_cast<double>(p) * inv_freq;
      cos_values[p * half + i] = static_cast<float>(std::cos(angle));
      sin_values[p * half + i] = static_cast<float>(std::sin(angle));
    }
  }
  RopeTables t;
  t.cos = Tensor::from_vector(cos_values, {positions, half}).to(device);
  t.sin = Tensor::from_vector(sin_values, {positions, half}).to(device);
  return t;
}

}  // namespace tessera
