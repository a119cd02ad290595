// The `gpt_mtp` training job: a decoder-only transformer with multi-token-prediction heads
// (framework/models/gpt_mtp.h) on token shards from `tessera data tokenize`.
//
//   tessera train --config examples/gpt_mtp/tiny.toml --out runs/tiny
//   tessera train --config examples/gpt_mtp/tiny.toml --out runs/tiny --resume runs/tiny
//
// Config keys (defaults in brackets; examples/gpt_mtp/README.md explains them):
//   seed [0], device [cpu]
//   data.dir [data/brown/tok8192]: train.bin and val.bin; data.tokenizer [data.dir/tok.json, else
//     the one named in data.dir/manifest.json]: copied to OUT/tokenizer.json for `tessera generate`
//   model.vocab_size (required), model.context [256], model.n_layers [4], model.dim [256],
//     model.n_heads [4], model.n_kv_heads [0 = n_heads], model.norm [rmsnorm|layernorm],
//     model.norm_eps [1e-5], model.positions [rope|learned], model.rope_theta [10000],
//     model.mlp [gelu|swiglu], model.mlp_hidden [0 = 4*dim / 8/3*dim], model.tie_embeddings [true],
//     model.dropout [0], model.mtp_kind [deepseek|medusa|none], model.mtp_depth [1],
//     model.mtp_lambda [0.3], model.mtp_shared_head [true] (medusa)
//   train.batch_size [16], train.seq_len [model.context], train.steps (required),
//     train.grad_accum [1], train.grad_clip [1.0; 0 = off], train.stop_at [0 = off],
//     train.time_limit_minutes [0 = off: otherwise evaluate, checkpoint and stop once that much
//     wall time has passed; --resume continues],
//     train.precision [auto = bf16 on CUDA, f32 on CPU | f32 | bf16 | fp16 (dynamic loss scaling:
//     amp.init_scale [65536], amp.growth_factor [2], amp.backoff_factor [0.5], amp.growth_interval [2000])]
//   optim.lr [3e-4], optim.weight_decay [0.1; 2-D weights only], optim.betas [[0.9, 0.95]],
//     optim.eps [1e-8]  (AdamW)
//   schedule.name [warmup_cosine|constant], schedule.warmup_steps [0], schedule.min_lr [0]
//   eval.every [0 = at the end only; otherwise also before the first step], eval.batch_size
//     [train.batch_size], eval.max_batches [0 = the whole validation split]
//   log.every [10], checkpoint.every [0 = at the end only], checkpoint.keep [3]
//   dist.timeout_s [300], dist.allreduce_dtype [fp32|bf16|fp16], dist.first_bucket_mb [1],
//     dist.bucket_mb [25], dist.zero [0]; metrics.port [0 = off], metrics.address [0.0.0.0],
//     metrics.dump [false], metrics.peak_tflops [0]  (framework/train/distributed.h)
//
// Data parallel (`mpirun -np N tessera train ...`): train.batch_size is the micro-batch of ONE
// rank; a step trains on N * batch_size * grad_accum windows, and the windows of step s are
// the same for any N with the same N * batch_size (lm_loader.h), so 2 ranks of 8 train what 1
// rank of 16 trains. Gradients are averaged by the Reducer (or ZeRO-1); only rank 0 writes
// log.jsonl, progress lines and checkpoints (ZeRO: every rank its shard). Logged losses and
// evaluation results are over all ranks. train.time_limit_minutes is decided by rank 0's clock
// and broadcast every step, so all ranks stop at the same step. At the end every rank checks
// that all hold bitwise-identical parameters.
//
// One optimizer step = train.grad_accum micro-batches of train.batch_size windows of
// seq_len + 1 + D tokens (the loader's extra targets feed the MTP depths); the loss of each is
// scaled by 1/grad_accum before backward, so gradients are the mean over the step. Weight decay
// goes to matrices and embeddings only (two AdamW instances, saved under "decay." and
// "no_decay." in optimizer.safetensors).
//
// Precision: f32 master weights always live in the model and the optimizer. With bf16 the model
// computes in bf16 (GptMtp::set_compute_dtype): every weight is cast at its use by a
// differentiable cast, so the gradients reach the f32 masters in f32 and accumulate there over
// micro-batches; the optimizer, clipping and the loss sums stay f32. We chose this over
// separate bf16 parameter copies refreshed once per step because it needs no second set of
// leaves, accumulates gradients in f32 for free, and is as capturable: the step launches the
// same kernels on allocator-stable buffers every time, with no host synchronisation (losses
// and the gradient norm are read back only at logging steps).
//
// Log: training lines {"step", "loss" (total), "loss_main", "loss_mtp": [...], "lr",
// "grad_norm"} averaged since the previous line; evaluation lines {"step", "val_loss",
// "val_accuracy", "val_loss_mtp": [per depth], "mtp_accuracy": [per depth]}, where depth k's
// accuracy is how often its top-1 equals the true token i+k+1. Resume restores model,
// optimizers, the default generator (dropout), the loader position and the loss window, so a
// resumed run logs exactly the numbers of a straight run.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/data/lm_loader.h"
#include "framework/data/token_shard.h"
#include "framework/models/gpt_mtp.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/schedule.h"
#include "framework/train/checkpoint.h"
#include "framework/train/distributed.h"
#include "framework/train/dp_optimizer.h"
#include "framework/train/job.h"
#include "framework/train/jobs/gpt_mtp_settings.h"
#include "framework/train/log.h"
#include "framework/train/progress.h"
#include "framework/train/train_metrics.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

// The tokenizer to copy into the run: data.tokenizer, else data.dir/tok.json, else the path in
// data.dir/manifest.json ("" when none exists).
std::string find_tokenizer(const GptMtpSettings& s) {
  if (!s.tokenizer.empty()) return s.tokenizer;
  const fs::path local = fs::path(s.data_dir) / "tok.json";
  if (fs::exists(local)) return local.string();
  std::ifstream manifest(fs::path(s.data_dir) / "manifest.json");
  if (!manifest.good()) return "";
  const nlohmann::json j = nlohmann::json::parse(manifest, nullptr, /*allow_exceptions=*/false);
  if (!j.is_object() || !j.contains("tokenizer") || !j["tokenizer"].is_string()) return "";
  const std::string path = j["tokenizer"].get<std::string>();
  return fs::exists(path) ? path : "";
}

// Running sums of the logged losses since the last log line (device scalars, f32).
struct LossWindow {
  Tensor total, main;
  std::vector<Tensor> mtp;
  int64_t steps = 0;

  void reset(int64_t depth, Device device) {
    total = Tensor::zeros({}, DType::f32, device);
    main = Tensor::zeros({}, DType::f32, device);
    mtp.assign(static_cast<size_t>(depth), Tensor());
    for (auto& t : mtp) t = Tensor::zeros({}, DType::f32, device);
    steps = 0;
  }
  // Sums over this rank's steps, averaged over the ranks (collective): [total, main, mtp...].
  std::vector<double> values(const DataParallel& dp) const {
    std::vector<double> v = {total.item(), main.item()};
    for (const auto& t : mtp) v.push_back(t.item());
    dp.average(v);
    return v;
  }
  nlohmann::json to_json(const DataParallel& dp) const {
    const std::vector<double> v = values(dp);
    return {{"steps", steps}, {"total", v[0]}, {"main", v[1]}, {"mtp", std::vector<double>(v.begin() + 2, v.end())}};
  }
  void from_json(const nlohmann::json& j, Device device) {
    steps = j.at("steps").get<int64_t>();
    total = Tensor::scalar(j.at("total").get<double>(), DType::f32, device);
    main = Tensor::scalar(j.at("main").get<double>(), DType::f32, device);
    const auto& m = j.at("mtp");
    TESSERA_CHECK(m.size() == mtp.size(), "checkpoint: the loss window has ", m.size(), " MTP depths, the model ",
                  mtp.size());
    for (size_t k = 0; k < mtp.size(); ++k) mtp[k] = Tensor::scalar(m[k].get<double>(), DType::f32, device);
  }
};

struct EvalResult {
  double loss = 0, accuracy = 0;
  std::vector<double> mtp_loss, mtp_accuracy;
};

class GptMtpJob : public Job {
 public:
  explicit GptMtpJob(const JobContext& ctx) : ctx_(ctx), s_(read_gpt_mtp_settings(ctx.config)) {
    for (const char* split : {"train.bin", "val.bin"}) {
      const fs::path file = fs::path(s_.data_dir) / split;
      TESSERA_CHECK(fs::exists(file), "data.dir ", s_.data_dir, ": ", file.string(), " does not exist; ",
                    gpt_mtp_data_hint(s_.data_dir, s_.model.vocab_size));
    }
    compute_dtype_ = s_.precision == "fp16"                                                    ? DType::f16
                     : s_.precision == "bf16" || (s_.precision == "auto" && ctx.device.is_cuda()) ? DType::bf16
                                                                                                  : DType::f32;
    device_ = ctx.device;
  }

  void run() override {
    const auto start = std::chrono::steady_clock::now();
    DataParallel dp(s_.dist, ctx_.device);
    device_ = dp.device();
    const bool root = dp.is_root();
    const int64_t depth = s_.model.depth();
    auto train_shard = std::make_shared<const data::TokenShard>(data::TokenShard::open(s_.data_dir + "/train.bin"));
    auto val_shard = std::make_shared<const data::TokenShard>(data::TokenShard::open(s_.data_dir + "/val.bin"));
    for (const auto* shard : {train_shard.get(), val_shard.get()})
      TESSERA_CHECK(shard->vocab_size() <= s_.model.vocab_size, "config key `model.vocab_size`=", s_.model.vocab_size,
                    " is smaller than the vocabulary of ", shard->path(), " (", shard->vocab_size(), ")");
    data::LmLoaderOptions loader_options;
    loader_options.batch_size = s_.batch_size;
    loader_options.seq_len = s_.seq_len;
    loader_options.extra_targets = depth;
    loader_options.seed = s_.seed;
    loader_options.rank = dp.rank();
    loader_options.world_size = dp.world_size();
    data::LmLoader loader(train_shard, loader_options);

    manual_seed(s_.seed);
    model_ = std::make_shared<models::GptMtp>(s_.model);
    model_->to(device_);
    model_->set_compute_dtype(compute_dtype_);
    dp.broadcast_parameters(*model_);
    std::unique_ptr<DataParallelOptimizer> optimizer = make_optimizer(dp);
    const std::vector<NamedOptimizer> optimizers = {{"optimizer", optimizer.get()}};
    const auto schedule = optim::make_schedule(s_.schedule, s_.lr, s_.warmup_steps, s_.steps, s_.min_lr);
    const std::string tokenizer = find_tokenizer(s_);
    TrainMetrics metrics(dp, flops_per_token());

    JsonlLog log(ctx_.out_dir, root);
    int64_t step = 0;
    LossWindow window;
    window.reset(depth, device_);
    if (!ctx_.resume_dir.empty()) {
      const Checkpoint ckpt = load_job_checkpoint("--resume", ctx_.resume_dir, "gpt_mtp", device_);
      const std::string& dir = ckpt.dir;
      const auto& st = ckpt.state;
      model_->load_state_dict(ckpt.file("model"));
      restore_dp_optimizers(ckpt, optimizers);
      step = ckpt.step;
      default_generator().set_state(st.at("rng").at("seed").get<uint64_t>(), st.at("rng").at("offset").get<uint64_t>());
      loader.restore(data::lm_loader_state_from_json(st.at("loader")));
      window.from_json(st.at("loss_window"), device_);
      log.truncate_after(step);
      if (root) std::printf("resumed from %s at step %lld\n", dir.c_str(), static_cast<long long>(step));
    } else if (!tokenizer.empty() && root) {
      fs::create_directories(ctx_.out_dir);
      fs::copy_file(tokenizer, fs::path(ctx_.out_dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
    }
    TESSERA_CHECK(step <= s_.steps, "the checkpoint is at step ", step, ", beyond the configured ", s_.steps,
                  " steps (raise train.steps to train further)");
    const int64_t rank_tokens = s_.batch_size * s_.seq_len * s_.grad_accum;  // per rank and step
    if (root) {
      std::printf("gpt_mtp: %lld parameters, %s compute, %lld train + %lld val tokens, %lld tokens per step\n",
                  static_cast<long long>(model_->parameter_count()), dtype_name(compute_dtype_),
                  static_cast<long long>(train_shard->size()), static_cast<long long>(val_shard->size()),
                  static_cast<long long>(rank_tokens * dp.world_size()));
      if (dp.running())
        std::printf("data parallel: %d rank(s) on %s, %s, gradients as %s\n", dp.world_size(),
                    device_.is_cpu() ? "cpu (MPI)" : "cuda (NCCL)", optimizer->zero() ? "ZeRO-1" : "DDP buckets",
                    s_.dist.allreduce_dtype.c_str());
    }

    const int64_t first_step = step;
    Progress progress(s_.steps, s_.log_every, "tokens", step, root);
    std::optional<EvalResult> last_eval;
    int64_t last_eval_step = -1;
    if (step == 0 && s_.eval_every > 0) {
      last_eval = evaluate(val_shard, dp);
      last_eval_step = 0;
      write_eval(log, progress, 0, *last_eval);
    }
    model_->train();
    while (step < s_.steps) {
      const auto step_start = std::chrono::steady_clock::now();
      const double lr = schedule->at(step);
      optimizer->set_lr(lr);
      optimizer->zero_grad();
      for (int64_t micro = 0; micro < s_.grad_accum; ++micro) {
        const MicroStep sync = optimizer->micro_step(micro, s_.grad_accum);  // communicate on the last only
        const Tensor batch = loader.next().window.to(device_);
        const models::GptMtpLosses losses =
            models::gpt_mtp_loss(model_->forward_window(batch), batch, s_.model.mtp_lambda);
        optimizer->scale(s_.grad_accum == 1 ? losses.total : losses.total * (1.0 / static_cast<double>(s_.grad_accum)))
            .backward();
        NoGradGuard no_grad;
        const double share = 1.0 / static_cast<double>(s_.grad_accum);
        window.total = window.total + losses.total.detach() * share;
        window.main = window.main + losses.main.detach() * share;
        for (int64_t k = 0; k < depth; ++k) window.mtp[k] = window.mtp[k] + losses.mtp[k].detach() * share;
      }
      const bool stepped = optimizer->step();
      ++step;
      ++window.steps;
      progress.count(rank_tokens * dp.world_size());
      metrics.step(step, std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count(),
                   rank_tokens, s_.batch_size * s_.grad_accum, optimizer->scaler());
      if (!stepped) {
        nlohmann::ordered_json record = {{"step", step}, {"skipped_step", true},
                                         {"loss_scale", optimizer->scaler().loss_scale()}};
        log.write(record);
        progress.note("step " + std::to_string(step) + ": non-finite gradients, step skipped; loss scale now " +
                      std::to_string(optimizer->scaler().loss_scale()));
      }

      if (step % s_.log_every == 0 || step == s_.steps)
        write_train(log, progress, metrics, dp, step, lr, window, *optimizer);
      const bool out_of_time = s_.time_limit_minutes > 0 && step < s_.steps &&
                               dp.root_decides(minutes_since(start) >= s_.time_limit_minutes);
      if ((s_.eval_every > 0 && step % s_.eval_every == 0) || step == s_.steps || out_of_time) {
        last_eval = evaluate(val_shard, dp);
        last_eval_step = step;
        write_eval(log, progress, step, *last_eval);
      }
      const bool stopping = (step == s_.stop_at && step < s_.steps) || out_of_time;
      if ((s_.checkpoint_every > 0 && step % s_.checkpoint_every == 0) || step == s_.steps || stopping) {
        const nlohmann::json state = {
            {"job", "gpt_mtp"},
            {"rng", {{"seed", default_generator().seed()}, {"offset", default_generator().offset()}}},
            {"loader", data::lm_loader_state_to_json(loader.state())},
            {"loss_window", window.to_json(dp)},
            {"model", s_.model.to_json()},
            {"tokenizer", tokenizer.empty() ? "" : fs::absolute(tokenizer).string()},
            {"config", ctx_.config.to_json()}};
        std::vector<CheckpointFile> files;
        if (root) files.push_back({"model", model_->state_dict()});
        const std::string dir =
            save_dp_checkpoint(dp, ctx_.out_dir, step, std::move(files), state, s_.checkpoint_keep, optimizers);
        progress.note("checkpoint: " + dir);
      }
      if (stopping) {
        finish(dp, metrics);
        if (root) {
          std::printf("stopped at step %lld of %lld (%s); continue with --resume %s\n", static_cast<long long>(step),
                      static_cast<long long>(s_.steps), out_of_time ? "train.time_limit_minutes" : "train.stop_at",
                      ctx_.out_dir.c_str());
          if (out_of_time)
            std::printf("final val_loss %.4f, val_accuracy %.4f%s\n", last_eval->loss, last_eval->accuracy,
                        format_mtp(*last_eval).c_str());
        }
        std::fflush(stdout);
        return;
      }
    }
    if (last_eval_step != s_.steps) last_eval = evaluate(val_shard, dp);  // resumed at the final step
    finish(dp, metrics);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (root) {
      std::printf("trained steps %lld..%lld in %.1f s\n", static_cast<long long>(first_step + 1),
                  static_cast<long long>(s_.steps), seconds);
      std::printf("final val_loss %.4f, val_accuracy %.4f%s\n", last_eval->loss, last_eval->accuracy,
                  format_mtp(*last_eval).c_str());
    }
    std::fflush(stdout);
  }

 private:
  static double minutes_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
  }

  // AdamW with weight decay on matrices and embeddings only: two optim::AdamW instances saved
  // under "decay." and "no_decay.", or (dist.zero = 1) one sharded AdamW with a decay mask.
  std::unique_ptr<DataParallelOptimizer> make_optimizer(DataParallel& dp) const {
    const DpOptimizerOptions options{.max_grad_norm = s_.grad_clip, .scaler = s_.scaler};
    DataParallelOptimizer::NamedParameters params = model_->named_parameters();
    if (s_.dist.zero) {
      dist::ZeroOptions z;
      z.lr = s_.lr;
      z.beta1 = s_.beta1;
      z.beta2 = s_.beta2;
      z.eps = s_.eps;
      z.weight_decay = s_.weight_decay;
      for (const auto& [name, p] : params) z.weight_decay_mask.push_back(p.dim() >= 2);
      return std::make_unique<DataParallelOptimizer>(dp, std::move(params), z, options);
    }
    std::vector<Tensor> decay, no_decay;
    for (const auto& [name, p] : params) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    optim::AdamWOptions o{.lr = s_.lr, .beta1 = s_.beta1, .beta2 = s_.beta2, .eps = s_.eps,
                          .weight_decay = s_.weight_decay};
    DataParallelOptimizer::PlainOptimizers plain;
    plain.emplace_back("decay.", std::make_unique<optim::AdamW>(decay, o));
    o.weight_decay = 0.0;
    plain.emplace_back("no_decay.", std::make_unique<optim::AdamW>(no_decay, o));
    return std::make_unique<DataParallelOptimizer>(dp, std::move(params), std::move(plain), options);
  }

  // Model FLOPs per trained token, forward + backward (for the mfu metric): 6 per parameter
  // plus causal-free attention 12 * blocks * seq_len * dim (PaLM's estimate; the MTP modules
  // count as blocks). Approximate by design: norms, softmax and the loss are left out.
  double flops_per_token() const {
    const int64_t blocks = s_.model.n_layers + (s_.model.mtp_kind == "deepseek" ? s_.model.depth() : 0);
    return 6.0 * static_cast<double>(model_->parameter_count()) +
           12.0 * static_cast<double>(blocks * s_.seq_len * s_.model.dim);
  }

  // The end of a run (or a stop): every rank must hold the same parameters; metrics dump.
  void finish(const DataParallel& dp, TrainMetrics& metrics) const {
    if (dp.running() && dp.world_size() > 1) {
      const uint64_t hash = dp.check_identical(*model_);
      if (dp.is_root())
        std::printf("parameters bitwise identical on all %d ranks (fnv1a64 %016llx)\n", dp.world_size(),
                    static_cast<unsigned long long>(hash));
    }
    metrics.finish(ctx_.out_dir);
  }

  static std::string format_mtp(const EvalResult& r) {
    std::string text;
    for (size_t k = 0; k < r.mtp_loss.size(); ++k) {
      char buf[96];
      std::snprintf(buf, sizeof buf, ", depth %zu: val_loss %.4f mtp_accuracy %.4f", k + 1, r.mtp_loss[k],
                    r.mtp_accuracy[k]);
      text += buf;
    }
    return text;
  }

  void write_train(JsonlLog& log, Progress& progress, TrainMetrics& metrics, const DataParallel& dp, int64_t step,
                   double lr, LossWindow& window, const DataParallelOptimizer& optimizer) const {
    const double n = static_cast<double>(window.steps);
    const std::vector<double> sums = window.values(dp);  // averaged over ranks
    nlohmann::ordered_json record;
    record["step"] = step;
    record["loss"] = sums[0] / n;
    record["loss_main"] = sums[1] / n;
    record["loss_mtp"] = nlohmann::ordered_json::array();
    for (size_t k = 2; k < sums.size(); ++k) record["loss_mtp"].push_back(sums[k] / n);
    record["lr"] = lr;
    const Tensor& grad_norm = optimizer.grad_norm();
    if (grad_norm.defined()) record["grad_norm"] = grad_norm.item();
    if (optimizer.scaler().enabled()) record["loss_scale"] = optimizer.scaler().loss_scale();
    log.write(record);
    metrics.logged(record["loss"].get<double>(), grad_norm.defined() ? record["grad_norm"].get<double>() : -1.0);
    char extra[64];
    std::snprintf(extra, sizeof extra, "main %.4f | lr %.2e", record["loss_main"].get<double>(), lr);
    progress.print(step, record["loss"].get<double>(), extra);
    window.reset(static_cast<int64_t>(window.mtp.size()), device_);
  }

  void write_eval(JsonlLog& log, Progress& progress, int64_t step, const EvalResult& r) const {
    nlohmann::ordered_json record;
    record["step"] = step;
    record["val_loss"] = r.loss;
    record["val_accuracy"] = r.accuracy;
    record["val_loss_mtp"] = r.mtp_loss;
    record["mtp_accuracy"] = r.mtp_accuracy;
    log.write(record);
    char text[96];
    std::snprintf(text, sizeof text, "eval step %lld: val_loss %.4f val_accuracy %.4f", static_cast<long long>(step),
                  r.loss, r.accuracy);
    progress.note(text + format_mtp(r));
  }

  // Mean loss and top-1 accuracy of the main head and of every depth over the validation
  // windows (non-overlapping, in order; each rank takes its share of every batch); sums stay on
  // the device until the end, then are summed over the ranks.
  EvalResult evaluate(const std::shared_ptr<const data::TokenShard>& shard, const DataParallel& dp) {
    NoGradGuard no_grad;
    model_->eval();
    const int64_t depth = s_.model.depth();
    data::LmLoaderOptions o;
    o.batch_size = s_.eval_batch_size;
    o.seq_len = s_.seq_len;
    o.extra_targets = depth;
    o.rank = dp.rank();
    o.world_size = dp.world_size();
    data::LmEvalIterator it(shard, o);
    std::vector<Tensor> loss_sum(depth + 1), correct(depth + 1);
    for (int64_t k = 0; k <= depth; ++k) {
      loss_sum[k] = Tensor::zeros({}, DType::f32, device_);
      correct[k] = Tensor::zeros({}, DType::f32, device_);
    }
    int64_t tokens = 0, batches = 0;
    data::LmBatch batch;
    while ((s_.eval_max_batches == 0 || batches < s_.eval_max_batches) && it.next(batch)) {
      ++batches;
      if (batch.rows() == 0) continue;
      const Tensor w = batch.window.to(device_);
      const models::GptMtpOutput out = model_->forward_window(w);
      for (int64_t k = 0; k <= depth; ++k) {
        const Tensor& logits = k == 0 ? out.logits : out.mtp_logits[k - 1];
        const Tensor targets = w.slice(1, k + 1, k + 1 + s_.seq_len);
        loss_sum[k] = loss_sum[k] + cast(cross_entropy(logits, targets, -100, 0.0, Reduction::none), DType::f32).sum();
        correct[k] = correct[k] + sum(eq(argmax(logits, -1), targets));
      }
      tokens += batch.rows() * s_.seq_len;
    }
    model_->train();
    std::vector<double> sums = {static_cast<double>(tokens)};  // [tokens, loss 0..D, correct 0..D]
    for (const auto& t : loss_sum) sums.push_back(t.item());
    for (const auto& t : correct) sums.push_back(t.item());
    dp.sum(sums);
    TESSERA_CHECK(sums[0] > 0, "evaluation: ", shard->path(), " holds no window of ", s_.seq_len + 1 + depth,
                  " tokens");
    const double n = sums[0];
    const auto loss_at = [&](int64_t k) { return sums[1 + k] / n; };
    const auto correct_at = [&](int64_t k) { return sums[2 + depth + k] / n; };
    EvalResult r;
    r.loss = loss_at(0);
    r.accuracy = correct_at(0);
    for (int64_t k = 1; k <= depth; ++k) {
      r.mtp_loss.push_back(loss_at(k));
      r.mtp_accuracy.push_back(correct_at(k));
    }
    return r;
  }

  JobContext ctx_;
  GptMtpSettings s_;
  DType compute_dtype_ = DType::f32;
  Device device_;  // ctx_.device, or this rank's GPU
  std::shared_ptr<models::GptMtp> model_;
};

}  // namespace

TESSERA_JOB(gpt_mtp, [](const JobContext& ctx) { return std::make_unique<GptMtpJob>(ctx); });

}  // namespace tessera::train
