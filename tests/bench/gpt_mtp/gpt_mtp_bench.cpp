// gpt_mtp_bench: training throughput of GPT-MTP at the shapes of a config (default
// examples/gpt_mtp/small.toml: 12 x 768, 12 heads, context 1024, DeepSeek MTP depth 1, vocab
// 8192, batch 16) on one GPU, bf16 compute with f32 master weights, exactly the gpt_mtp job's
// step: forward over windows [B, T + 1 + D], loss, backward, gradient clipping, two AdamW
// instances (decay / no decay). Prints one machine-readable line:
//
//   RESULT impl=tessera step_ms=412.3 tokens_per_s=39741 flops_per_token=8.1e8 params=98.4e6 ...
//
// Step time: CUDA events around each whole step (no host synchronisation inside it; the loss
// is never read back during timing); the median of --iters steps after --warmup steps. The
// batches are random tokens generated on the device beforehand (8 distinct sets, rotated).
// FLOPs per token (stated in run.sh's table): 6 * (matrix parameters, counting the shared
// output head once per use: main + each MTP depth) + 7 * S * dim per attention layer (causal
// forward 2 * S * dim, backward 2.5 times that), the same formula for the PyTorch peer.
//
//   gpt_mtp_bench [--config FILE] [--iters N] [--warmup N] [--batch B]
#include <cuda_runtime.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <exception>
#include <string>
#include <vector>

#include "framework/core/cuda_check.h"
#include "framework/models/gpt_mtp.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/train/config.h"
#include "framework/train/jobs/gpt_mtp_settings.h"

namespace {

using namespace tessera;

struct Flags {
  std::string config = "examples/gpt_mtp/small.toml";
  int iters = 20, warmup = 5;
  int64_t batch = 0;  // 0: train.batch_size of the config
};

Flags parse(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw std::runtime_error("missing value after " + a);
      return argv[++i];
    };
    if (a == "--config") f.config = value();
    else if (a == "--iters") f.iters = std::stoi(value());
    else if (a == "--warmup") f.warmup = std::stoi(value());
    else if (a == "--batch") f.batch = std::stoll(value());
    else throw std::runtime_error("unknown flag " + a + " (flags: --config FILE --iters N --warmup N --batch B)");
  }
  return f;
}

// FLOPs per trained token; see the header comment.
double flops_per_token(const models::GptMtpOptions& o, int64_t seq, int64_t matrix_params) {
  const double head = static_cast<double>(o.vocab_size) * o.dim;
  // The embedding lookup is free; the shared output head (tok_emb when tied, else lm_head) is
  // a product at the main head and at every DeepSeek depth or shared Medusa head.
  const bool shared_by_depths = o.mtp_kind == "deepseek" || (o.mtp_kind == "medusa" && o.mtp_shared_head);
  const double head_uses = 1.0 + (shared_by_depths ? static_cast<double>(o.depth()) : 0.0);
  const double matmul =
      static_cast<double>(matrix_params) - head - (o.tie_embeddings ? 0.0 : head) + head * head_uses;
  const double attention_layers = static_cast<double>(o.n_layers + (o.mtp_kind == "deepseek" ? o.depth() : 0));
  return 6.0 * matmul + 7.0 * static_cast<double>(seq) * o.dim * attention_layers;
}

void run(const Flags& f) {
  train::Config config = train::Config::from_file(f.config);
  config.get_string("job", "gpt_mtp");
  config.get_string("device", "cuda");
  const train::GptMtpSettings s = train::read_gpt_mtp_settings(config);
  const models::GptMtpOptions& o = s.model;
  const int64_t batch = f.batch > 0 ? f.batch : s.batch_size, seq = s.seq_len;
  const Device device = Device::cuda(0);
  require_device(device);

  manual_seed(s.seed);
  models::GptMtp model(o);
  model.to(device);
  model.set_compute_dtype(DType::bf16);
  std::vector<Tensor> decay, no_decay;
  int64_t matrix_params = 0;
  for (const auto& [name, p] : model.named_parameters()) {
    (p.dim() >= 2 ? decay : no_decay).push_back(p);
    if (p.dim() >= 2 && name != "pos_emb.weight") matrix_params += p.numel();
  }
  optim::AdamW decay_opt(decay, {.lr = s.lr, .beta1 = s.beta1, .beta2 = s.beta2, .eps = s.eps,
                                 .weight_decay = s.weight_decay});
  optim::AdamW no_decay_opt(no_decay, {.lr = s.lr, .beta1 = s.beta1, .beta2 = s.beta2, .eps = s.eps,
                                       .weight_decay = 0.0});
  const std::vector<Tensor> params = model.parameters();
  Generator gen(1);
  std::vector<Tensor> batches;
  for (int i = 0; i < 8; ++i)
    batches.push_back(randint({batch, seq + 1 + o.depth()}, 0, o.vocab_size, DType::i64, device, &gen));

  model.train();
  auto step = [&](int i) {
    decay_opt.zero_grad();
    no_decay_opt.zero_grad();
    const Tensor& w = batches[i % batches.size()];
    const models::GptMtpLosses l = models::gpt_mtp_loss(model.forward_window(w), w, o.mtp_lambda);
    l.total.backward();
    if (s.grad_clip > 0) optim::clip_grad_norm(params, s.grad_clip);
    decay_opt.step();
    no_decay_opt.step();
    return l.total;
  };
  Tensor last;
  for (int i = 0; i < f.warmup; ++i) last = step(i);
  TESSERA_CUDA_CHECK(cudaDeviceSynchronize());
  const double warm_loss = last.defined() ? last.item() : 0.0;

  cudaEvent_t start, stop;
  TESSERA_CUDA_CHECK(cudaEventCreate(&start));
  TESSERA_CUDA_CHECK(cudaEventCreate(&stop));
  std::vector<float> ms;
  for (int i = 0; i < f.iters; ++i) {
    TESSERA_CUDA_CHECK(cudaEventRecord(start, nullptr));
    last = step(f.warmup + i);
    TESSERA_CUDA_CHECK(cudaEventRecord(stop, nullptr));
    TESSERA_CUDA_CHECK(cudaEventSynchronize(stop));
    float t = 0;
    TESSERA_CUDA_CHECK(cudaEventElapsedTime(&t, start, stop));
    ms.push_back(t);
  }
  std::sort(ms.begin(), ms.end());
  const double median = ms[ms.size() / 2];
  const double tokens = static_cast<double>(batch * seq);
  const double fpt = flops_per_token(o, seq, matrix_params);
  size_t free_bytes = 0, total_bytes = 0;
  TESSERA_CUDA_CHECK(cudaMemGetInfo(&free_bytes, &total_bytes));
  std::printf("RESULT impl=tessera step_ms=%.2f tokens_per_s=%.0f flops_per_token=%.4e params=%lld batch=%lld "
              "seq=%lld loss_warm=%.4f loss_last=%.4f device_mem_used_gb=%.1f min_ms=%.2f max_ms=%.2f\n",
              median, tokens / (median / 1e3), fpt, static_cast<long long>(model.parameter_count()),
              static_cast<long long>(batch), static_cast<long long>(seq), warm_loss, last.item(),
              static_cast<double>(total_bytes - free_bytes) / 1e9, ms.front(), ms.back());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    run(parse(argc, argv));
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpt_mtp_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
