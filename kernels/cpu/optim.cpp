// CPU fused optimizer updates and gradient-norm clipping (kernels/optim.h), the reference for
// kernels/cuda/optim.cu. Tensors are updated one after another, each split across threads;
// the norm's partial sums follow the chunking of the CUDA version and are added in order.
#include <cmath>
#include <vector>

#include "kernels/cpu/common.h"
#include "kernels/optim.h"
#include "kernels/optim_math.h"

namespace tessera::kernels {
namespace {

// Calls fn(T*, A*) typed for the parameter dtype (A: the state and arithmetic type).
template <typename Fn>
void with_param_type(DType dtype, const char* op, Fn&& fn) {
  float_dtype_switch(dtype, op, [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    fn(static_cast<T*>(nullptr), static_cast<cpu::AccType<T>*>(nullptr));
  });
}

// body(p, g, s0, s1, s2, i) for every element of every tensor; unused states point at a dummy.
template <typename T, typename A, typename Body>
void for_each_element(const OptimTensor* tensors, int64_t count, Body&& body) {
  for (int64_t t = 0; t < count; ++t) {
    const OptimTensor& ot = tensors[t];
    T* p = static_cast<T*>(ot.param);
    const T* g = static_cast<const T*>(ot.grad);
    A* s[3];
    for (int k = 0; k < 3; ++k) s[k] = static_cast<A*>(ot.state[k]);
    cpu::parallel_for(ot.numel, [&](int64_t begin, int64_t end) {
      A dummy[3] = {A(0), A(0), A(0)};
      for (int64_t i = begin; i < end; ++i) {
        A& s0 = s[0] ? s[0][i] : dummy[0];
        A& s1 = s[1] ? s[1][i] : dummy[1];
        A& s2 = s[2] ? s[2][i] : dummy[2];
        p[i] = cpu::store<T>(body(ot, cpu::load(p[i]), cpu::load(g[i]), s0, s1, s2));
      }
    });
  }
}

}  // namespace

int64_t norm_chunk_count(const int64_t* numels, int64_t count) {
  int64_t chunks = 0;
  for (int64_t t = 0; t < count; ++t) chunks += (numels[t] + kNormChunk - 1) / kNormChunk;
  return chunks;
}

void sgd_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const SgdConfig& config) {
  with_param_type(dtype, "SGD update", [&](auto* ttag, auto* atag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    using A = std::remove_pointer_t<decltype(atag)>;
    const SgdCoeffs<A> c(config);
    for_each_element<T, A>(tensors, count, [&](const OptimTensor& ot, A p, A g, A& buf, A&, A&) {
      return sgd_element(c, ot.step == 1, p, g, buf);
    });
  });
}

void adam_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const AdamConfig& config) {
  with_param_type(dtype, "Adam update", [&](auto* ttag, auto* atag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    using A = std::remove_pointer_t<decltype(atag)>;
    const AdamCoeffs<A> c(config);
    for (int64_t t = 0; t < count; ++t) {
      const double step = static_cast<double>(tensors[t].step);
      const A step_size = A(config.lr / (1.0 - std::pow(config.beta1, step)));
      const A bc2_sqrt = A(std::sqrt(1.0 - std::pow(config.beta2, step)));
      for_each_element<T, A>(tensors + t, 1, [&](const OptimTensor&, A p, A g, A& m, A& v, A&) {
        return adam_element(c, step_size, bc2_sqrt, p, g, m, v);
      });
    }
  });
}

void rmsprop_update_cpu(DType dtype, const OptimTensor* tensors, int64_t count, const RmspropConfig& config) {
  with_param_type(dtype, "RMSprop update", [&](auto* ttag, auto* atag) {
    using T = std::remove_pointer_t<decltype(ttag)>;
    using A = std::remove_pointer_t<decltype(atag)>;
    const RmspropCoeffs<A> c(config);
    for_each_element<T, A>(tensors, count, [&](const OptimTensor&, A p, A g, A& sq, A& buf, A& ga) {
      return rmsprop_element(c, p, g, sq, buf, ga);
    });
  });
}

void grad_norm_partials_cpu(DType dtype, const void* const* data, const int64_t* numels, int64_t count,
                            double* partials) {
  // Job j is chunk `chunk[j]` of tensor `tensor[j]`; partials[j] is its sum of squares.
  std::vector<int64_t> tensor, chunk;
  for (int64_t t = 0; t < count; ++t)
    for (int64_t c = 0; c * kNormChunk < numels[t]; ++c) {
      tensor.push_back(t);
      chunk.push_back(c);
    }
  float_dtype_switch(dtype, "gradient norm", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    cpu::parallel_for(static_cast<int64_t>(tensor.size()), [&](int64_t begin, int64_t end) {
      for (int64_t j = begin; j < end; ++j) {
        const T* x = static_cast<const T*>(data[tensor[j]]);
        const int64_t lo = chunk[j] * kNormChunk, hi = std::min(numels[tensor[j]], lo + kNormChunk);
        double sum = 0.0;
        for (int64_t i = lo; i < hi; ++i) {
          const double v = static_cast<double>(cpu::load(x[i]));
          sum += v * v;
        }
        partials[j] = sum;
      }
    }, 1);
  });
}

void clip_coefficient_cpu(const double* partials, int64_t count, double max_norm, float* norm, float* coef) {
  double total = 0.0;
  for (int64_t i = 0; i < count; ++i) total += partials[i];
  const double n = std::sqrt(total);
  *norm = static_cast<float>(n);
  *coef = static_cast<float>(std::min(1.0, max_norm / (n + 1e-6)));
}

void scale_by_cpu(DType dtype, void* const* data, const int64_t* numels, int64_t count, const float* coef) {
  float_dtype_switch(dtype, "gradient clipping", [&](auto* tag) {
    using T = std::remove_pointer_t<decltype(tag)>;
    using A = cpu::AccType<T>;
    const A c = static_cast<A>(*coef);
    for (int64_t t = 0; t < count; ++t) {
      T* x = static_cast<T*>(data[t]);
      cpu::parallel_for(numels[t], [&](int64_t begin, int64_t end) {
        for (int64_t i = begin; i < end; ++i) x[i] = cpu::store<T>(cpu::load(x[i]) * c);
      });
    }
  });
}

}  // namespace tessera::kernels
