#include "framework/ops/matmul.h"

#include "framework/ops/common.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/shape.h"
#include "kernels/matmul.h"

namespace tessera {
namespace {

// How a matrix operand (the last two dims of a tensor) is handed to the GEMM.
struct MatrixOperand {
  Tensor data;  // possibly a contiguous copy
  bool trans = false;
  int64_t ld = 0;
  int64_t batch_stride = 0;
};

// Batch dims (all but the last two) flatten to one stride if collapsible or all broadcast.
bool uniform_batch_stride(const Tensor& t, int64_t& stride) {
  stride = 0;
  int64_t previous = -1;
  for (int64_t i = t.dim() - 3; i >= 0; --i) {
    if (t.shape()[i] == 1) continue;
    if (previous >= 0 && t.strides()[i] != t.strides()[previous] * t.shape()[previous]) return false;
    if (previous < 0) stride = t.strides()[i];
    previous = i;
  }
  return true;
}

MatrixOperand matrix_operand(const Tensor& t) {
  const int64_t r = t.shape()[t.dim() - 2], c = t.shape()[t.dim() - 1];
  const int64_t sr = t.strides()[t.dim() - 2], sc = t.strides()[t.dim() - 1];
  MatrixOperand op;
  int64_t batch_stride = 0;
  if (uniform_batch_stride(t, batch_stride)) {
    if ((sc == 1 || c == 1) && sr >= std::max<int64_t>(c, 1)) {
      op.data = t;
      op.ld = std::max<int64_t>(sr, 1);
      op.batch_stride = batch_stride;
      return op;
    }
    if ((sr == 1 || r == 1) && sc >= std::max<int64_t>(r, 1)) {
      op.data = t;
      op.trans = true;
      op.ld = std::max<int64_t>(sc, 1);
      op.batch_stride = batch_stride;
      return op;
    }
  }
  op.data = t.clone_data();
  op.ld = std::max<int64_t>(c, 1);
  op.batch_stride = t.dim() > 2 ? r * c : 0;
  return op;
}

// out = a @ b for a [..., m, k], b [..., k, n] with batch dims already broadcast to `batch`.
Tensor batched_gemm(const Tensor& a, const Tensor& b, const Shape& batch) {
  const int64_t m = a.shape()[a.dim() - 2], k = a.shape()[a.dim() - 1], n = b.shape()[b.dim() - 1];
  Shape out_shape = batch;
  out_shape.push_back(m);
  out_shape.push_back(n);
  Tensor out = Tensor::empty(out_shape, a.dtype(), a.device());
  if (out.numel() == 0) return out;
  if (k == 0) return Tensor::zeros(out_shape, a.dtype(), a.device());
  const MatrixOperand oa = matrix_operand(a), ob = matrix_operand(b);
  kernels::GemmArgs g;
  g.dtype = a.dtype();
  g.m = m;
  g.n = n;
  g.k = k;
  g.a = oa.data.data_ptr();
  g.trans_a = oa.trans;
  g.lda = oa.ld;
  g.stride_a = oa.batch_stride;
  g.b = ob.data.data_ptr();
  g.trans_b = ob.trans;
  g.ldb = ob.ld;
  g.stride_b = ob.batch_stride;
  g.c = out.data_ptr();
  g.ldc = n;
  g.stride_c = m * n;
  g.batch = shape_numel(batch);
  TESSERA_DEVICE_DISPATCH(out, kernels::gemm_cpu(g), kernels::gemm_cuda(g, stream_for(out)));
  return out;
}

struct MatmulBackward : autograd::Node {
  autograd::SavedTensor a, b;
  std::string name() const override { return "MatmulBackward"; }
  std::vector<Tensor> apply(std::vector<Tensor>& grads) override {
    const Tensor& g = grads[0];
    const Tensor av = a.unpack(), bv = b.unpack();
    Tensor ga, gb;
    if (needs_input_grad(0)) ga = sum_to(matmul(g, transpose(bv, -1, -2)), av.shape());
    if (needs_input_grad(1)) {
      if (bv.dim() == 2 && av.dim() > 2) {  // flattened batch: one GEMM, no [B, k, n] temporary
        const Tensor a2 = reshape(av, {-1, av.shape().back()});
        const Tensor g2 = reshape(g, {-1, g.shape().back()});
        gb = matmul(transpose(a2, 0, 1), g2);
      } else {
        gb = sum_to(matmul(transpose(av, -1, -2), g), bv.shape());
      }
    }
    return {ga, gb};
  }
  void release_saved() override {
    a.reset();
    b.reset();
  }
};

// Both operands at least 2-D.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t k = a.shape().back();
  TESSERA_CHECK(b.shape()[b.dim() - 2] == k, "matmul: shapes ", shape_str(a.shape()), " and ", shape_str(b.shape()),
                " do not match (inner dimensions ", k, " and ", b.shape()[b.dim() - 2], ")");
  Tensor out;
  if (b.dim() == 2 && a.dim() > 2) {
    // [..., m, k] @ [k, n]: fold the batch into m when a's layout allows a view.
    Tensor a2;
    {
      NoGradGuard no_grad;
      a2 = reshape(a, {-1, k});
    }
    Tensor flat = batched_gemm(a2, b, {});
    Shape shape(a.shape().begin(), a.shape().end() - 1);
    shape.push_back(b.shape().back());
    out = flat.as_strided(shape, contiguous_strides(shape), 0);
  } else {
    const Shape a_batch(a.shape().begin(), a.shape().end() - 2), b_batch(b.shape().begin(), b.shape().end() - 2);
    const Shape batch = ops::broadcast_shapes("matmul", a_batch, b_batch);
    Shape a_full = batch, b_full = batch;
    a_full.insert(a_full.end(), a.shape().end() - 2, a.shape().end());
    b_full.insert(b_full.end(), b.shape().end() - 2, b.shape().end());
    NoGradGuard no_grad;
    out = batched_gemm(expand(a, a_full), expand(b, b_full), batch);
  }
  if (autograd::needs_grad({a, b})) {
    auto node = autograd::make_node<MatmulBackward>({a, b});
    node->a = autograd::SavedTensor(a, false);
    node->b = autograd::SavedTensor(b, false);
    autograd::record(out, node);
  }
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  ops::check_defined("matmul", a, "first operand");
  ops::check_defined("matmul", b, "second operand");
  ops::check_same_device("matmul", a, b);
  ops::check_same_dtype("matmul", a, b);
  ops::check_floating("matmul", a);
  TESSERA_CHECK(a.dim() >= 1 && b.dim() >= 1, "matmul: operands must have at least one dimension, got ",
                shape_str(a.shape()), " and ", shape_str(b.shape()));
  if (a.dim() == 1 && b.dim() == 1) {
    TESSERA_CHECK(a.shape()[0] == b.shape()[0], "matmul: shapes ", shape_str(a.shape()), " and ",
                  shape_str(b.shape()), " do not match");
    return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  }
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  TESSERA_CHECK(weight.dim() == 2, "linear: weight must be 2-D [out, in], got ", shape_str(weight.shape()));
  TESSERA_CHECK(x.dim() >= 1 && x.shape().back() == weight.shape()[1], "linear: input ", shape_str(x.shape()),
                " does not match weight ", shape_str(weight.shape()), " (last input dimension must be ",
                weight.shape()[1], ")");
  Tensor y = matmul(x, transpose(weight, 0, 1));
  if (bias.defined()) {
    TESSERA_CHECK(bias.dim() == 1 && bias.shape()[0] == weight.shape()[0], "linear: bias ", shape_str(bias.shape()),
                  " does not match weight ", shape_str(weight.shape()));
    y = add(y, bias);
  }
  return y;
}

}  // namespace tessera
