// Global-norm gradient clipping (clip.h): gradients grouped by dtype, one partial-sum pass per
// group, one coefficient kernel, one in-place scaling pass per group.
#include "framework/optim/clip.h"

#include <algorithm>
#include <cmath>
#include <optional>

#include "framework/autograd/grad_mode.h"
#include "framework/core/cuda_context.h"
#include "kernels/optim.h"

namespace tessera::optim {
namespace {

struct GradGroup {
  DType dtype;
  std::vector<void*> data;
  std::vector<int64_t> numels;
};

}  // namespace

Tensor clip_grad_norm(const std::vector<Tensor>& params, double max_norm) {
  TESSERA_CHECK(std::isfinite(max_norm) && max_norm >= 0.0, "clip_grad_norm: max_norm ", max_norm,
                " must be finite and non-negative");
  NoGradGuard no_grad;
  std::optional<Device> device;
  std::vector<GradGroup> groups;
  std::vector<std::pair<Tensor, Tensor>> write_back;  // (gradient, contiguous copy)
  for (size_t i = 0; i < params.size(); ++i) {
    TESSERA_CHECK(params[i].defined(), "clip_grad_norm: parameter ", i, " is undefined");
    Tensor g = params[i].grad();
    if (!g.defined()) continue;
    TESSERA_CHECK(is_floating_point(g.dtype()), "clip_grad_norm: gradient ", i, " is ", dtype_name(g.dtype()));
    if (!device) device = g.device();
    TESSERA_CHECK(g.device() == *device, "clip_grad_norm: gradients on ", device->str(), " and ", g.device().str(),
                  " (parameter ", i, "); all must be on one device");
    if (!g.is_contiguous()) {
      Tensor packed = g.clone_data();
      write_back.emplace_back(g, packed);
      g = packed;
    }
    auto it = std::find_if(groups.begin(), groups.end(), [&](const GradGroup& gg) { return gg.dtype == g.dtype(); });
    if (it == groups.end()) it = groups.insert(groups.end(), GradGroup{g.dtype(), {}, {}});
    it->data.push_back(g.data_ptr());
    it->numels.push_back(g.numel());
  }
  if (!device) return Tensor::zeros({});

  int64_t chunks = 0;
  for (const auto& gg : groups) chunks += kernels::norm_chunk_count(gg.numels.data(), static_cast<int64_t>(gg.numels.size()));
  const Tensor partials = Tensor::empty({std::max<int64_t>(chunks, 1)}, DType::f64, *device);
  const Tensor norm = Tensor::empty({}, DType::f32, *device);
  const Tensor coef = Tensor::empty({}, DType::f32, *device);
  auto* partial = partials.data<double>();
  if (device->is_cpu()) {
    for (const auto& gg : groups) {
      const auto n = static_cast<int64_t>(gg.data.size());
      kernels::grad_norm_partials_cpu(gg.dtype, gg.data.data(), gg.numels.data(), n, partial);
      partial += kernels::norm_chunk_count(gg.numels.data(), n);
    }
    kernels::clip_coefficient_cpu(partials.data<double>(), chunks, max_norm, norm.data<float>(), coef.data<float>());
    for (const auto& gg : groups)
      kernels::scale_by_cpu(gg.dtype, gg.data.data(), gg.numels.data(), static_cast<int64_t>(gg.data.size()),
                            coef.data<float>());
  } else {
#ifdef TESSERA_WITH_CUDA
    void* stream = cuda::compute_stream(device->index);
    for (const auto& gg : groups) {
      const auto n = static_cast<int64_t>(gg.data.size());
      kernels::grad_norm_partials_cuda(gg.dtype, gg.data.data(), gg.numels.data(), n, partial, stream);
      partial += kernels::norm_chunk_count(gg.numels.data(), n);
    }
    kernels::clip_coefficient_cuda(partials.data<double>(), chunks, max_norm, norm.data<float>(), coef.data<float>(),
                                   stream);
    for (const auto& gg : groups)
      kernels::scale_by_cuda(gg.dtype, gg.data.data(), gg.numels.data(), static_cast<int64_t>(gg.data.size()),
                             coef.data<float>(), stream);
#endif
  }
  for (const auto& [grad, packed] : write_back) copy_into(grad, packed);
  return norm;
}

}  // namespace tessera::optim
