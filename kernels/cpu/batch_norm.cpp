// CPU batch normalisation (kernels/batch_norm.h), the reference for kernels/cuda/batch_norm.cu.
//
// Each channel is handled by one thread from start to end (statistics, running-stat update,
// output), so results do not depend on the thread count. The mean and variance use two
// passes (mean, then squared deviations), summed image by image in order.
#include <algorithm>
#include <cmath>

#include "kernels/batch_norm.h"
#include "kernels/cpu/common.h"

namespace tessera::kernels {
namespace {

template <typename R, typename A>
void update_running(void* running, int64_t c, A value, double momentum) {
  R* r = static_cast<R*>(running);
  const double old = static_cast<double>(cpu::load(r[c]));
  r[c] = cpu::store<R>(static_cast<A>((1.0 - momentum) * old + momentum * static_cast<double>(value)));
}

template <typename A>
A read_running(const void* running, DType dtype, int64_t c) {
  return float_dtype_switch(dtype, "batch_norm running statistics", [&](auto* tag) -> A {
    using R = std::remove_pointer_t<decltype(tag)>;
    return static_cast<A>(cpu::load(static_cast<const R*>(running)[c]));
  });
}

template <typename T>
void forward_typed(const BatchNormForwardArgs& a) {
  using A = cpu::AccType<T>;
  const T* x = static_cast<const T*>(a.x);
  const T* weight = static_cast<const T*>(a.weight);
  const T* bias = static_cast<const T*>(a.bias);
  T* y = static_cast<T*>(a.y);
  A* mean_out = static_cast<A*>(a.mean);
  A* rstd_out = static_cast<A*>(a.rstd);
  const int64_t n = a.batch * a.spatial, C = a.channels, S = a.spatial;
  const bool update = a.use_batch_stats && a.running_mean != nullptr;
  cpu::parallel_for(C, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      A mean = 0, var = 0;
      if (a.use_batch_stats) {
        for (int64_t b = 0; b < a.batch; ++b)
          for (int64_t s = 0; s < S; ++s) mean += cpu::load(x[(b * C + c) * S + s]);
        mean /= static_cast<A>(n);
        for (int64_t b = 0; b < a.batch; ++b)
          for (int64_t s = 0; s < S; ++s) {
            const A d = cpu::load(x[(b * C + c) * S + s]) - mean;
            var += d * d;
          }
        var /= static_cast<A>(n);
      } else {
        mean = read_running<A>(a.running_mean, a.running_dtype, c);
        var = read_running<A>(a.running_var, a.running_dtype, c);
      }
      const A rstd = A(1) / std::sqrt(var + static_cast<A>(a.eps));
      mean_out[c] = mean;
      rstd_out[c] = rstd;
      if (update) {
        const A unbiased = n > 1 ? var * static_cast<A>(n) / static_cast<A>(n - 1) : var;
        float_dtype_switch(a.running_dtype, "batch_norm running statistics", [&](auto* tag) {
          using R = std::remove_pointer_t<decltype(tag)>;
          update_running<R>(a.running_mean, c, mean, a.momentum);
          update_running<R>(a.running_var, c, unbiased, a.momentum);
        });
      }
      const A scale = rstd * (weight ? cpu::load(weight[c]) : A(1));
      const A shift = (bias ? cpu::load(bias[c]) : A(0)) - mean * scale;
      for (int64_t b = 0; b < a.batch; ++b)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (b * C + c) * S + s;
          y[i] = cpu::store<T>(cpu::load(x[i]) * scale + shift);
        }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(n, 1)));
  if (update && a.num_batches_tracked) *a.num_batches_tracked += 1;
}

template <typename T>
void backward_typed(const BatchNormBackwardArgs& a) {
  using A = cpu::AccType<T>;
  const T* dy = static_cast<const T*>(a.dy);
  const T* x = static_cast<const T*>(a.x);
  const T* weight = static_cast<const T*>(a.weight);
  const A* mean_in = static_cast<const A*>(a.mean);
  const A* rstd_in = static_cast<const A*>(a.rstd);
  T* dx = static_cast<T*>(a.dx);
  T* dweight = static_cast<T*>(a.dweight);
  T* dbias = static_cast<T*>(a.dbias);
  const int64_t C = a.channels, S = a.spatial;
  const A inv_n = A(1) / static_cast<A>(a.batch * S);
  cpu::parallel_for(C, [&](int64_t begin, int64_t end) {
    for (int64_t c = begin; c < end; ++c) {
      const A mean = mean_in[c], rstd = rstd_in[c];
      A sum_dy = 0, sum_dy_xhat = 0;
      for (int64_t b = 0; b < a.batch; ++b)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (b * C + c) * S + s;
          const A g = cpu::load(dy[i]);
          sum_dy += g;
          sum_dy_xhat += g * (cpu::load(x[i]) - mean);
        }
      sum_dy_xhat *= rstd;
      if (dbias) dbias[c] = cpu::store<T>(sum_dy);
      if (dweight) dweight[c] = cpu::store<T>(sum_dy_xhat);
      if (!dx) continue;
      const A k1 = rstd * (weight ? cpu::load(weight[c]) : A(1));
      const A k2 = a.use_batch_stats ? -k1 * rstd * sum_dy_xhat * inv_n : A(0);
      const A k0 = a.use_batch_stats ? -k1 * sum_dy * inv_n - mean * k2 : A(0);
      for (int64_t b = 0; b < a.batch; ++b)
        for (int64_t s = 0; s < S; ++s) {
          const int64_t i = (b * C + c) * S + s;
          dx[i] = cpu::store<T>(cpu::load(dy[i]) * k1 + cpu::load(x[i]) * k2 + k0);
        }
    }
  }, std::max<int64_t>(1, cpu::kParallelGrain / std::max<int64_t>(a.batch * S, 1)));
}

}  // namespace

void batch_norm_forward_cpu(const BatchNormForwardArgs& args) {
  float_dtype_switch(args.dtype, "batch_norm", [&](auto* tag) {
    forward_typed<std::remove_pointer_t<decltype(tag)>>(args);
  });
}

void batch_norm_backward_cpu(const BatchNormBackwardArgs& args) {
  float_dtype_switch(args.dtype, "batch_norm backward", [&](auto* tag) {
    backward_typed<std::remove_pointer_t<decltype(tag)>>(args);
  });
}

}  // namespace tessera::kernels
