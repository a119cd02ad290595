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
//     train.precision [auto = bf16 on CUDA, f32 on CPU | f32 | bf16]
//   optim.lr [3e-4], optim.weight_decay [0.1; 2-D weights only], optim.betas [[0.9, 0.95]],
//     optim.eps [1e-8]  (AdamW)
//   schedule.name [warmup_cosine|constant], schedule.warmup_steps [0], schedule.min_lr [0]
//   eval.every [0 = at the end only; otherwise also before the first step], eval.batch_size
//     [train.batch_size], eval.max_batches [0 = the whole validation split]
//   log.every [10], checkpoint.every [0 = at the end only], checkpoint.keep [3]
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
#include "framework/train/job.h"
#include "framework/train/jobs/gpt_mtp_settings.h"
#include "framework/train/log.h"
#include "framework/train/progress.h"

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
  nlohmann::json to_json() const {
    nlohmann::json m = nlohmann::json::array();
    for (const auto& t : mtp) m.push_back(t.item());
    return {{"steps", steps}, {"total", total.item()}, {"main", main.item()}, {"mtp", m}};
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

nn::StateDict prefixed(const std::string& prefix, const nn::StateDict& state) {
  nn::StateDict out;
  for (const auto& [key, t] : state) out.emplace_back(prefix + key, t);
  return out;
}

nn::StateDict with_prefix(const std::string& prefix, const nn::StateDict& state) {
  nn::StateDict out;
  for (const auto& [key, t] : state)
    if (key.rfind(prefix, 0) == 0) out.emplace_back(key.substr(prefix.size()), t);
  return out;
}

class GptMtpJob : public Job {
 public:
  explicit GptMtpJob(const JobContext& ctx) : ctx_(ctx), s_(read_gpt_mtp_settings(ctx.config)) {
    for (const char* split : {"train.bin", "val.bin"}) {
      const fs::path file = fs::path(s_.data_dir) / split;
      TESSERA_CHECK(fs::exists(file), "data.dir ", s_.data_dir, ": ", file.string(), " does not exist; ",
                    gpt_mtp_data_hint(s_.data_dir, s_.model.vocab_size));
    }
    compute_dtype_ = s_.precision == "bf16" || (s_.precision == "auto" && ctx.device.is_cuda()) ? DType::bf16
                                                                                                : DType::f32;
  }

  void run() override {
    const auto start = std::chrono::steady_clock::now();
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
    data::LmLoader loader(train_shard, loader_options);

    manual_seed(s_.seed);
    model_ = std::make_shared<models::GptMtp>(s_.model);
    model_->to(ctx_.device);
    model_->set_compute_dtype(compute_dtype_);
    std::vector<Tensor> decay, no_decay;
    for (const auto& [name, p] : model_->named_parameters()) (p.dim() >= 2 ? decay : no_decay).push_back(p);
    optim::AdamWOptions o{.lr = s_.lr, .beta1 = s_.beta1, .beta2 = s_.beta2, .eps = s_.eps,
                          .weight_decay = s_.weight_decay};
    optim::AdamW decay_opt(decay, o);
    o.weight_decay = 0.0;
    optim::AdamW no_decay_opt(no_decay, o);
    const auto schedule = optim::make_schedule(s_.schedule, s_.lr, s_.warmup_steps, s_.steps, s_.min_lr);
    const std::string tokenizer = find_tokenizer(s_);

    JsonlLog log(ctx_.out_dir);
    int64_t step = 0;
    LossWindow window;
    window.reset(depth, ctx_.device);
    if (!ctx_.resume_dir.empty()) {
      const std::string dir = latest_checkpoint(ctx_.resume_dir);
      TESSERA_CHECK(!dir.empty(), "--resume ", ctx_.resume_dir, ": no checkpoint found (looked for ",
                    ctx_.resume_dir, "/checkpoints/step_<N>/ with a state.json)");
      const Checkpoint ckpt = load_checkpoint(dir, ctx_.device);
      const auto& st = ckpt.state;
      TESSERA_CHECK(st.value("job", "") == "gpt_mtp", "checkpoint ", dir, " was written by job \"",
                    st.value("job", "?"), "\", not \"gpt_mtp\"");
      model_->load_state_dict(ckpt.file("model"));
      decay_opt.load_state_dict(with_prefix("decay.", ckpt.file("optimizer")));
      no_decay_opt.load_state_dict(with_prefix("no_decay.", ckpt.file("optimizer")));
      step = ckpt.step;
      default_generator().set_state(st.at("rng").at("seed").get<uint64_t>(), st.at("rng").at("offset").get<uint64_t>());
      loader.restore(data::lm_loader_state_from_json(st.at("loader")));
      window.from_json(st.at("loss_window"), ctx_.device);
      log.truncate_after(step);
      std::printf("resumed from %s at step %lld\n", dir.c_str(), static_cast<long long>(step));
    } else if (!tokenizer.empty()) {
      fs::create_directories(ctx_.out_dir);
      fs::copy_file(tokenizer, fs::path(ctx_.out_dir) / "tokenizer.json", fs::copy_options::overwrite_existing);
    }
    TESSERA_CHECK(step <= s_.steps, "the checkpoint is at step ", step, ", beyond the configured ", s_.steps,
                  " steps (raise train.steps to train further)");
    std::printf("gpt_mtp: %lld parameters, %s compute, %lld train + %lld val tokens, %lld tokens per step\n",
                static_cast<long long>(model_->parameter_count()), dtype_name(compute_dtype_),
                static_cast<long long>(train_shard->size()), static_cast<long long>(val_shard->size()),
                static_cast<long long>(s_.batch_size * s_.seq_len * s_.grad_accum));

    const int64_t first_step = step;
    Progress progress(s_.steps, s_.log_every, "tokens", step);
    const std::vector<Tensor> params = model_->parameters();
    std::optional<EvalResult> last_eval;
    int64_t last_eval_step = -1;
    if (step == 0 && s_.eval_every > 0) {
      last_eval = evaluate(val_shard);
      last_eval_step = 0;
      write_eval(log, progress, 0, *last_eval);
    }
    model_->train();
    Tensor grad_norm;
    while (step < s_.steps) {
      const double lr = schedule->at(step);
      decay_opt.set_lr(lr);
      no_decay_opt.set_lr(lr);
      decay_opt.zero_grad();
      no_decay_opt.zero_grad();
      for (int64_t micro = 0; micro < s_.grad_accum; ++micro) {
        const Tensor batch = loader.next().window.to(ctx_.device);
        const models::GptMtpLosses losses =
            models::gpt_mtp_loss(model_->forward_window(batch), batch, s_.model.mtp_lambda);
        (s_.grad_accum == 1 ? losses.total : losses.total * (1.0 / static_cast<double>(s_.grad_accum))).backward();
        NoGradGuard no_grad;
        const double share = 1.0 / static_cast<double>(s_.grad_accum);
        window.total = window.total + losses.total.detach() * share;
        window.main = window.main + losses.main.detach() * share;
        for (int64_t k = 0; k < depth; ++k) window.mtp[k] = window.mtp[k] + losses.mtp[k].detach() * share;
      }
      if (s_.grad_clip > 0) grad_norm = optim::clip_grad_norm(params, s_.grad_clip);
      decay_opt.step();
      no_decay_opt.step();
      ++step;
      ++window.steps;
      progress.count(s_.batch_size * s_.seq_len * s_.grad_accum);

      if (step % s_.log_every == 0 || step == s_.steps) write_train(log, progress, step, lr, window, grad_norm);
      const bool out_of_time = s_.time_limit_minutes > 0 && step < s_.steps &&
                               minutes_since(start) >= s_.time_limit_minutes;
      if ((s_.eval_every > 0 && step % s_.eval_every == 0) || step == s_.steps || out_of_time) {
        last_eval = evaluate(val_shard);
        last_eval_step = step;
        write_eval(log, progress, step, *last_eval);
      }
      const bool stopping = (step == s_.stop_at && step < s_.steps) || out_of_time;
      if ((s_.checkpoint_every > 0 && step % s_.checkpoint_every == 0) || step == s_.steps || stopping) {
        const nlohmann::json state = {
            {"job", "gpt_mtp"},
            {"rng", {{"seed", default_generator().seed()}, {"offset", default_generator().offset()}}},
            {"loader", data::lm_loader_state_to_json(loader.state())},
            {"loss_window", window.to_json()},
            {"model", s_.model.to_json()},
            {"tokenizer", tokenizer.empty() ? "" : fs::absolute(tokenizer).string()},
            {"config", ctx_.config.to_json()}};
        nn::StateDict optimizer_state = prefixed("decay.", decay_opt.state_dict());
        for (auto& entry : prefixed("no_decay.", no_decay_opt.state_dict())) optimizer_state.push_back(entry);
        const std::string dir = save_checkpoint(ctx_.out_dir, step,
                                                {{"model", model_->state_dict()}, {"optimizer", optimizer_state}},
                                                state, s_.checkpoint_keep);
        progress.note("checkpoint: " + dir);
      }
      if (stopping) {
        std::printf("stopped at step %lld of %lld (%s); continue with --resume %s\n", static_cast<long long>(step),
                    static_cast<long long>(s_.steps), out_of_time ? "train.time_limit_minutes" : "train.stop_at",
                    ctx_.out_dir.c_str());
        if (out_of_time)
          std::printf("final val_loss %.4f, val_accuracy %.4f%s\n", last_eval->loss, last_eval->accuracy,
                      format_mtp(*last_eval).c_str());
        std::fflush(stdout);
        return;
      }
    }
    if (last_eval_step != s_.steps) last_eval = evaluate(val_shard);  // resumed at the final step
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("trained steps %lld..%lld in %.1f s\n", static_cast<long long>(first_step + 1),
                static_cast<long long>(s_.steps), seconds);
    std::printf("final val_loss %.4f, val_accuracy %.4f%s\n", last_eval->loss, last_eval->accuracy,
                format_mtp(*last_eval).c_str());
    std::fflush(stdout);
  }

 private:
  static double minutes_since(std::chrono::steady_clock::time_point start) {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
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

  void write_train(JsonlLog& log, Progress& progress, int64_t step, double lr, LossWindow& window,
                   const Tensor& grad_norm) const {
    const double n = static_cast<double>(window.steps);
    nlohmann::ordered_json record;
    record["step"] = step;
    record["loss"] = window.total.item() / n;
    record["loss_main"] = window.main.item() / n;
    record["loss_mtp"] = nlohmann::ordered_json::array();
    for (const auto& t : window.mtp) record["loss_mtp"].push_back(t.item() / n);
    record["lr"] = lr;
    if (grad_norm.defined()) record["grad_norm"] = grad_norm.item();
    log.write(record);
    char extra[64];
    std::snprintf(extra, sizeof extra, "main %.4f | lr %.2e", record["loss_main"].get<double>(), lr);
    progress.print(step, record["loss"].get<double>(), extra);
    window.reset(static_cast<int64_t>(window.mtp.size()), ctx_.device);
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
  // windows (non-overlapping, in order); sums stay on the device until the end.
  EvalResult evaluate(const std::shared_ptr<const data::TokenShard>& shard) {
    NoGradGuard no_grad;
    model_->eval();
    const int64_t depth = s_.model.depth();
    data::LmLoaderOptions o;
    o.batch_size = s_.eval_batch_size;
    o.seq_len = s_.seq_len;
    o.extra_targets = depth;
    data::LmEvalIterator it(shard, o);
    std::vector<Tensor> loss_sum(depth + 1), correct(depth + 1);
    for (int64_t k = 0; k <= depth; ++k) {
      loss_sum[k] = Tensor::zeros({}, DType::f32, ctx_.device);
      correct[k] = Tensor::zeros({}, DType::f32, ctx_.device);
    }
    int64_t tokens = 0, batches = 0;
    data::LmBatch batch;
    while ((s_.eval_max_batches == 0 || batches < s_.eval_max_batches) && it.next(batch)) {
      ++batches;
      if (batch.rows() == 0) continue;
      const Tensor w = batch.window.to(ctx_.device);
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
    TESSERA_CHECK(tokens > 0, "evaluation: ", shard->path(), " holds no window of ", s_.seq_len + 1 + depth,
                  " tokens");
    const auto n = static_cast<double>(tokens);
    EvalResult r;
    r.loss = loss_sum[0].item() / n;
    r.accuracy = correct[0].item() / n;
    for (int64_t k = 1; k <= depth; ++k) {
      r.mtp_loss.push_back(loss_sum[k].item() / n);
      r.mtp_accuracy.push_back(correct[k].item() / n);
    }
    return r;
  }

  JobContext ctx_;
  GptMtpSettings s_;
  DType compute_dtype_ = DType::f32;
  std::shared_ptr<models::GptMtp> model_;
};

}  // namespace

TESSERA_JOB(gpt_mtp, [](const JobContext& ctx) { return std::make_unique<GptMtpJob>(ctx); });

}  // namespace tessera::train
