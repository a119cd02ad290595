// The `classifier` training job: an image classifier on Fashion-MNIST, an MLP or a small CNN
// (framework/models/classifier.h; the CNN's features are what `tessera eval fid` compares).
//
//   tessera train --config examples/classifier/fmnist_mlp.toml --out runs/mlp
//   tessera train --config examples/classifier/fmnist_cnn.toml --out runs/cnn
//
// Config keys (defaults in brackets; examples/classifier/README.md explains them):
//   seed [0], device [cpu]
//   data.dir [/usr/share/datasets/fashion-mnist], data.pixel_range ["0,1"]
//   model.kind ["mlp"|"cnn"]
//     mlp: model.hidden [[256, 128]], model.activation ["relu"], model.dropout [0],
//     model.layer_norm [false]
//     cnn: model.channels [[32, 64]] (conv-bn-relu-avgpool blocks), model.hidden [[128]] (one
//     width: the feature layer)
//   train.batch_size [128], train.steps or train.epochs (exactly one), train.grad_clip [0 = off],
//     train.stop_at [0 = off: stop with a checkpoint after this step, e.g. to fit a time slot]
//   optim.name ["adamw"|"adam"|"sgd"], optim.lr [1e-3], optim.weight_decay [0.01 adamw, else 0],
//     optim.betas [[0.9, 0.999]], optim.eps [1e-8] (adam/adamw); optim.momentum [0.9],
//     optim.nesterov [false] (sgd)
//   schedule.name ["warmup_cosine"|"constant"], schedule.warmup_steps [0], schedule.min_lr [0]
//   eval.every [0 = at the end only], eval.batch_size [1000]
//   log.every [50], checkpoint.every [0 = at the end only], checkpoint.keep [3]
//   dist.* and metrics.* (framework/train/distributed.h); dist.zero = 1 needs optim.name = adamw;
//   dist.sync_batchnorm [false] (cnn only: the mlp has no batch norm and rejects the key)
//
// Data parallel (`mpirun -np N tessera train ...`): train.batch_size is one rank's batch; each
// step takes a global batch of N * batch_size examples from the shuffled epoch and rank r
// trains on its r-th slice (batch_sampler.h), so N ranks of b train what 1 rank of N * b
// trains (the cnn: with dist.sync_batchnorm = true, whose batch norms then normalise with the
// global batch's statistics, dist/sync_batch_norm.h). By default the cnn's batch norms use
// each rank's own batch, as PyTorch's BatchNorm2d under DDP, and rank 0's running statistics
// are copied to every rank before each evaluation and checkpoint, so evaluations use one model
// and the ranks end identical (checked). Only rank 0 writes the log, progress lines and
// checkpoints; logged losses and test results are over all ranks.
//
// The step loop keeps the host out of the way: the loss is summed on the device and read back
// only at logging steps, and the gradient norm only then. Resume restores model, optimizer,
// the default generator (dropout), the sampler position and the partial loss window, so that
// every logged number of a resumed run equals the straight run's.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <memory>
#include <optional>

#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/data/batch_sampler.h"
#include "framework/data/fashion_mnist.h"
#include "framework/models/classifier.h"
#include "framework/nn/activation.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/clip.h"
#include "framework/optim/schedule.h"
#include "framework/optim/sgd.h"
#include "framework/train/checkpoint.h"
#include "framework/train/distributed.h"
#include "framework/train/dp_optimizer.h"
#include "framework/train/job.h"
#include "framework/train/log.h"
#include "framework/train/progress.h"
#include "framework/train/train_metrics.h"

namespace tessera::train {
namespace {

struct ClassifierSettings {
  uint64_t seed = 0;
  std::string data_dir;
  data::PixelRange pixel_range = data::PixelRange::zero_one;
  std::string model_kind;
  models::ClassifierOptions model;
  models::CnnClassifierOptions cnn;
  int64_t batch_size = 128;
  int64_t steps = 0;       // from train.steps, or 0 when train.epochs is used
  double epochs = 0.0;
  double grad_clip = 0.0;
  int64_t stop_at = 0;
  std::string optimizer;
  double lr = 1e-3, weight_decay = 0.0, beta1 = 0.9, beta2 = 0.999, eps = 1e-8, momentum = 0.9;
  bool nesterov = false;
  std::string schedule;
  int64_t warmup_steps = 0;
  double min_lr = 0.0;
  int64_t eval_every = 0, eval_batch_size = 1000;
  int64_t log_every = 50;
  int64_t checkpoint_every = 0, checkpoint_keep = 3;
  DistSettings dist;
  bool sync_batchnorm = false;  // dist.sync_batchnorm (cnn only)
};

// Reads every key first, then rejects unknown keys, then validates values: a misspelt key
// (`train.step`) is reported as such, not as the complaint it causes ("set train.steps").
ClassifierSettings read_settings(const Config& c) {
  ClassifierSettings s;
  s.seed = static_cast<uint64_t>(c.get_int("seed", 0));
  s.data_dir = c.get_string("data.dir", data::FashionMnist::kDefaultDir);
  const std::string pixel_range = c.get_string("data.pixel_range", "0,1");

  s.model_kind = c.get_string("model.kind", "mlp");
  s.model.in_features = data::FashionMnist::kHeight * data::FashionMnist::kWidth;
  s.model.classes = data::FashionMnist::kClasses;
  std::vector<int64_t> cnn_hidden;
  if (s.model_kind == "cnn") {
    s.cnn.image_size = data::FashionMnist::kHeight;
    s.cnn.classes = data::FashionMnist::kClasses;
    s.cnn.channels = c.get_int_list("model.channels", {32, 64});
    cnn_hidden = c.get_int_list("model.hidden", {128});
  } else {
    s.model.hidden = c.get_int_list("model.hidden", {256, 128});
    s.model.activation = c.get_string("model.activation", "relu");
    s.model.dropout = c.get_double("model.dropout", 0.0);
    s.model.layer_norm = c.get_bool("model.layer_norm", false);
  }

  s.batch_size = c.get_int("train.batch_size", 128);
  const bool has_steps = c.has("train.steps"), has_epochs = c.has("train.epochs");
  if (has_steps) s.steps = c.get_int("train.steps");
  if (has_epochs) s.epochs = c.get_double("train.epochs");
  s.grad_clip = c.get_double("train.grad_clip", 0.0);
  s.stop_at = c.get_int("train.stop_at", 0);

  const std::vector<std::string> optimizers = {"adamw", "adam", "sgd"};
  s.optimizer = c.get_string("optim.name", "adamw");
  const bool known_optimizer = std::find(optimizers.begin(), optimizers.end(), s.optimizer) != optimizers.end();
  s.lr = c.get_double("optim.lr", 1e-3);
  s.weight_decay = c.get_double("optim.weight_decay", s.optimizer == "adamw" ? 0.01 : 0.0);
  std::vector<double> betas = {s.beta1, s.beta2};
  if (s.optimizer == "sgd" || !known_optimizer) {
    s.momentum = c.get_double("optim.momentum", 0.9);
    s.nesterov = c.get_bool("optim.nesterov", false);
  }
  if (s.optimizer != "sgd") {
    betas = c.get_double_list("optim.betas", betas);
    s.eps = c.get_double("optim.eps", 1e-8);
  }

  s.schedule = c.get_string("schedule.name", "warmup_cosine");
  s.warmup_steps = c.get_int("schedule.warmup_steps", 0);
  if (s.schedule != "constant") s.min_lr = c.get_double("schedule.min_lr", 0.0);

  s.eval_every = c.get_int("eval.every", 0);
  s.eval_batch_size = c.get_int("eval.batch_size", 1000);
  s.log_every = c.get_int("log.every", 50);
  s.checkpoint_every = c.get_int("checkpoint.every", 0);
  s.checkpoint_keep = c.get_int("checkpoint.keep", 3);
  s.dist = read_dist_settings(c);
  if (s.model_kind == "cnn") s.sync_batchnorm = c.get_bool("dist.sync_batchnorm", false);

  c.check_all_used();

  s.pixel_range = data::parse_pixel_range(pixel_range);
  check_choice(s.model_kind, {"mlp", "cnn"}, "model.kind");
  if (s.model_kind == "cnn") {
    TESSERA_CHECK(cnn_hidden.size() == 1, "config key `model.hidden` takes one width with `model.kind` = \"cnn\" ",
                  "(the feature layer), got ", cnn_hidden.size());
    s.cnn.hidden = cnn_hidden[0];
    s.cnn.validate();
  }
  for (int64_t h : s.model.hidden) check_positive(h, "model.hidden");
  check_choice(s.model.activation, nn::activation_names(), "model.activation");
  TESSERA_CHECK(s.model.dropout >= 0 && s.model.dropout < 1, "config key `model.dropout` must be in [0, 1), got ",
                s.model.dropout);
  check_positive(s.batch_size, "train.batch_size");
  TESSERA_CHECK(has_steps != has_epochs, "set exactly one of config keys `train.steps` and `train.epochs`",
                c.source().empty() ? "" : " in ", c.source(), has_steps ? " (both are set)" : "");
  if (has_steps) check_positive(s.steps, "train.steps");
  if (has_epochs) TESSERA_CHECK(s.epochs > 0, "config key `train.epochs` must be positive, got ", s.epochs);
  check_not_negative(s.grad_clip, "train.grad_clip");
  TESSERA_CHECK(s.stop_at >= 0, "config key `train.stop_at` must not be negative (0: run to the end)");
  check_choice(s.optimizer, optimizers, "optim.name");
  s.dist.validate();
  TESSERA_CHECK(!s.dist.zero || s.optimizer == "adamw", "config key `dist.zero` = 1 (ZeRO-1 sharded AdamW) needs ",
                "`optim.name` = \"adamw\", got \"", s.optimizer, "\"");
  TESSERA_CHECK(s.lr > 0, "config key `optim.lr` must be positive, got ", s.lr);
  check_not_negative(s.weight_decay, "optim.weight_decay");
  TESSERA_CHECK(betas.size() == 2 && betas[0] >= 0 && betas[0] < 1 && betas[1] >= 0 && betas[1] < 1,
                "config key `optim.betas` must be two numbers in [0, 1), like [0.9, 0.999]");
  s.beta1 = betas[0];
  s.beta2 = betas[1];
  check_choice(s.schedule, optim::schedule_names(), "schedule.name");
  TESSERA_CHECK(s.warmup_steps >= 0, "config key `schedule.warmup_steps` must not be negative");
  check_positive(s.eval_batch_size, "eval.batch_size");
  check_positive(s.log_every, "log.every");
  TESSERA_CHECK(s.eval_every >= 0 && s.checkpoint_every >= 0, "config keys `eval.every` and `checkpoint.every` ",
                "must not be negative (0 means: only at the end)");
  return s;
}

class ClassifierJob : public Job {
 public:
  explicit ClassifierJob(const JobContext& ctx) : ctx_(ctx), s_(read_settings(ctx.config)) {}

  void run() override {
    const auto start = std::chrono::steady_clock::now();
    DataParallel dp(s_.dist, ctx_.device);
    const Device device = dp.device();
    const bool root = dp.is_root();
    const data::FashionMnist train_set(s_.data_dir, data::Split::train, s_.pixel_range);
    const data::FashionMnist test_set(s_.data_dir, data::Split::test, s_.pixel_range);
    data::BatchSampler sampler(train_set.size(), s_.batch_size * dp.world_size(), s_.seed, dp.rank(), dp.world_size());
    const int64_t total = s_.steps > 0 ? s_.steps
                                       : std::max<int64_t>(1, std::llround(s_.epochs * static_cast<double>(
                                                                                           sampler.batches_per_epoch())));

    manual_seed(s_.seed);
    std::shared_ptr<nn::UnaryModule> model;
    if (s_.model_kind == "cnn")
      model = std::make_shared<models::CnnClassifier>(s_.cnn);
    else
      model = std::make_shared<models::MlpClassifier>(s_.model);
    model->to(device);
    dp.broadcast_parameters(*model);
    const int64_t synchronized_layers = s_.sync_batchnorm ? dp.synchronize_batch_norm(*model) : 0;
    std::unique_ptr<DataParallelOptimizer> optimizer = make_optimizer(dp, model->named_parameters());
    const std::vector<NamedOptimizer> optimizers = {{"optimizer", optimizer.get()}};
    const auto schedule = optim::make_schedule(s_.schedule, s_.lr, s_.warmup_steps, total, s_.min_lr);
    TrainMetrics metrics(dp, flops_per_example(*model));

    JsonlLog log(ctx_.out_dir, root);
    int64_t step = 0;
    Tensor loss_sum = Tensor::zeros({}, DType::f32, device);
    int64_t window_steps = 0;
    if (!ctx_.resume_dir.empty()) {
      const Checkpoint ckpt = load_job_checkpoint("--resume", ctx_.resume_dir, "classifier", device);
      const std::string& dir = ckpt.dir;
      model->load_state_dict(ckpt.file("model"));
      restore_dp_optimizers(ckpt, optimizers);
      step = ckpt.step;
      const auto& st = ckpt.state;
      default_generator().set_state(st.at("rng").at("seed").get<uint64_t>(), st.at("rng").at("offset").get<uint64_t>());
      sampler.restore({st.at("sampler").at("epoch").get<int64_t>(), st.at("sampler").at("position").get<int64_t>()});
      loss_sum = Tensor::scalar(st.at("loss_window").at("sum").get<double>(), DType::f32, device);
      window_steps = st.at("loss_window").at("steps").get<int64_t>();
      log.truncate_after(step);
      if (root) std::printf("resumed from %s at step %lld\n", dir.c_str(), static_cast<long long>(step));
    }
    TESSERA_CHECK(step <= total, "the checkpoint is at step ", step, ", beyond the configured ", total,
                  " steps (raise train.steps to train further)");
    if (root && dp.running()) {
      std::string statistics;
      if (synchronized_layers > 0)
        statistics = ", batch-norm statistics of the global batch (" + std::to_string(synchronized_layers) +
                     " synchronised layers)";
      else if (!model->named_buffers().empty())
        statistics = ", batch-norm statistics per rank (rank 0's running statistics shared at evaluations and checkpoints)";
      std::printf("data parallel: %d rank(s), %s, gradients as %s%s\n", dp.world_size(),
                  optimizer->zero() ? "ZeRO-1" : "DDP buckets", s_.dist.allreduce_dtype.c_str(), statistics.c_str());
    }

    const int64_t first_step = step;
    const int64_t global_batch = s_.batch_size * dp.world_size();
    Progress progress(total, s_.log_every, "examples", step, root);
    std::optional<std::pair<double, double>> last_eval;  // (accuracy, loss) at the final step
    model->train();
    while (step < total) {
      const auto step_start = std::chrono::steady_clock::now();
      const auto [images, labels] = train_set.batch(sampler.next());
      const Tensor x = images.to(device), y = labels.to(device);
      const double lr = schedule->at(step);
      optimizer->set_lr(lr);
      optimizer->zero_grad();
      const Tensor loss = cross_entropy((*model)(x), y);
      optimizer->scale(loss).backward();
      const bool stepped = optimizer->step();
      ++step;
      {
        NoGradGuard no_grad;
        loss_sum = loss_sum + loss.detach();
      }
      ++window_steps;
      progress.count(global_batch);
      metrics.step(step, std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count(), 0,
                   s_.batch_size, optimizer->scaler());
      if (!stepped) log.write({{"step", step}, {"skipped_step", true}, {"loss_scale", optimizer->scaler().loss_scale()}});

      if (step % s_.log_every == 0 || step == total) {
        const double mean_loss = window_mean(dp, loss_sum) / static_cast<double>(window_steps);
        nlohmann::ordered_json extra = {
            {"lr", lr}, {"epoch", static_cast<double>(step * global_batch) / static_cast<double>(train_set.size())}};
        const Tensor& grad_norm = optimizer->grad_norm();
        if (grad_norm.defined()) extra["grad_norm"] = grad_norm.item();
        log.train(step, mean_loss, extra);
        metrics.logged(mean_loss, grad_norm.defined() ? extra["grad_norm"].get<double>() : -1.0);
        char lr_text[32];
        std::snprintf(lr_text, sizeof lr_text, "lr %.2e", lr);
        progress.print(step, mean_loss, lr_text);
        loss_sum = Tensor::zeros({}, DType::f32, device);
        window_steps = 0;
      }
      const bool evaluating = (s_.eval_every > 0 && step % s_.eval_every == 0) || step == total;
      const bool stopping = step == s_.stop_at && step < total;
      const bool saving = (s_.checkpoint_every > 0 && step % s_.checkpoint_every == 0) || step == total || stopping;
      // Per-rank batch-norm statistics (the default) leave each rank's running statistics its
      // own; rank 0's are shared before every evaluation and checkpoint (and so at the end).
      if (synchronized_layers == 0 && (evaluating || saving)) dp.share_buffers(*model);
      if (evaluating) {
        const auto [accuracy, test_loss] = evaluate(*model, test_set, dp);
        log.eval(step, {{"test_accuracy", accuracy}, {"test_loss", test_loss}});
        char text[96];
        std::snprintf(text, sizeof text, "eval step %lld: test_accuracy %.4f test_loss %.4f",
                      static_cast<long long>(step), accuracy, test_loss);
        progress.note(text);
        if (step == total) last_eval = {accuracy, test_loss};
      }
      if (saving) {
        const nlohmann::json state = {
            {"job", "classifier"},
            {"rng", {{"seed", default_generator().seed()}, {"offset", default_generator().offset()}}},
            {"sampler", {{"epoch", sampler.state().epoch}, {"position", sampler.state().position}}},
            {"loss_window", {{"sum", window_mean(dp, loss_sum)}, {"steps", window_steps}}},
            {"model", model_json()},
            {"pixel_range", s_.pixel_range == data::PixelRange::zero_one ? "0,1" : "-1,1"},
            {"config", ctx_.config.to_json()}};
        std::vector<CheckpointFile> files;
        if (root) files.push_back({"model", model->state_dict()});
        const std::string dir =
            save_dp_checkpoint(dp, ctx_.out_dir, step, std::move(files), state, s_.checkpoint_keep, optimizers);
        progress.note("checkpoint: " + dir);
      }
      if (stopping) {
        finish(dp, *model, metrics);
        if (root)
          std::printf("stopped at step %lld of %lld (train.stop_at); continue with --resume %s\n",
                      static_cast<long long>(step), static_cast<long long>(total), ctx_.out_dir.c_str());
        return;
      }
    }
    if (!last_eval) last_eval = evaluate(*model, test_set, dp);  // resumed at the final step
    finish(dp, *model, metrics);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (root) {
      std::printf("trained steps %lld..%lld in %.1f s\n", static_cast<long long>(first_step + 1),
                  static_cast<long long>(total), seconds);
      std::printf("test accuracy: %.4f\n", last_eval->first);
    }
    std::fflush(stdout);
  }

 private:
  // This rank's loss sum averaged over the ranks (collective; the sum itself on one rank).
  static double window_mean(const DataParallel& dp, const Tensor& loss_sum) {
    std::vector<double> v = {loss_sum.item()};
    dp.average(v);
    return v[0];
  }

  // The end of a run (or a stop): every rank must hold the same parameters; metrics dump.
  void finish(const DataParallel& dp, const nn::Module& model, TrainMetrics& metrics) const {
    if (dp.running() && dp.world_size() > 1) {
      const uint64_t hash = dp.check_identical(model);
      if (dp.is_root())
        std::printf("parameters bitwise identical on all %d ranks (fnv1a64 %016llx)\n", dp.world_size(),
                    static_cast<unsigned long long>(hash));
    }
    metrics.finish(ctx_.out_dir);
    std::fflush(stdout);
  }

  std::unique_ptr<DataParallelOptimizer> make_optimizer(DataParallel& dp,
                                                        DataParallelOptimizer::NamedParameters named) const {
    const DpOptimizerOptions options{.max_grad_norm = s_.grad_clip, .scaler = {.enabled = false}};
    if (s_.dist.zero) {
      dist::ZeroOptions z{.lr = s_.lr, .beta1 = s_.beta1, .beta2 = s_.beta2, .eps = s_.eps,
                          .weight_decay = s_.weight_decay};
      return std::make_unique<DataParallelOptimizer>(dp, std::move(named), z, options);
    }
    std::vector<Tensor> params;
    for (const auto& [name, p] : named) params.push_back(p);
    DataParallelOptimizer::PlainOptimizers plain;
    plain.emplace_back("", make_plain_optimizer(std::move(params)));
    return std::make_unique<DataParallelOptimizer>(dp, std::move(named), std::move(plain), options);
  }

  std::unique_ptr<optim::Optimizer> make_plain_optimizer(std::vector<Tensor> params) const {
    if (s_.optimizer == "sgd") {
      optim::SgdOptions o;
      o.lr = s_.lr;
      o.momentum = s_.momentum;
      o.weight_decay = s_.weight_decay;
      o.nesterov = s_.nesterov;
      return std::make_unique<optim::SGD>(std::move(params), o);
    }
    if (s_.optimizer == "adam") {
      optim::AdamOptions o;
      o.lr = s_.lr;
      o.beta1 = s_.beta1;
      o.beta2 = s_.beta2;
      o.eps = s_.eps;
      o.weight_decay = s_.weight_decay;
      return std::make_unique<optim::Adam>(std::move(params), o);
    }
    optim::AdamWOptions o;
    o.lr = s_.lr;
    o.beta1 = s_.beta1;
    o.beta2 = s_.beta2;
    o.eps = s_.eps;
    o.weight_decay = s_.weight_decay;
    return std::make_unique<optim::AdamW>(std::move(params), o);
  }

  // What `tessera eval fid` rebuilds the network from (state.json "model").
  nlohmann::json model_json() const {
    if (s_.model_kind == "cnn") return s_.cnn.to_json();
    return {{"kind", "mlp"}, {"hidden", s_.model.hidden}, {"activation", s_.model.activation},
            {"layer_norm", s_.model.layer_norm}};
  }

  // Model FLOPs per example, forward + backward (3x forward), for the mfu metric: an MLP does 2
  // per weight forward; a CNN 2 per weight per output position of each convolution.
  double flops_per_example(const nn::Module& model) const {
    if (s_.model_kind != "cnn") return 6.0 * static_cast<double>(model.parameter_count());
    double forward = 0.0;
    int64_t in = s_.cnn.in_channels, size = s_.cnn.image_size;
    for (int64_t c : s_.cnn.channels) {
      forward += 2.0 * static_cast<double>(in * c * 9 * size * size);
      in = c;
      size /= 2;
    }
    forward += 2.0 * static_cast<double>(in * size * size * s_.cnn.hidden + s_.cnn.hidden * s_.cnn.classes);
    return 3.0 * forward;
  }

  // (accuracy, mean loss) on the whole test split; sums stay on the device until the end.
  // Rank r evaluates the batches r, r + N, ...; the sums are added over the ranks.
  std::pair<double, double> evaluate(nn::UnaryModule& model, const data::FashionMnist& test_set,
                                     const DataParallel& dp) const {
    NoGradGuard no_grad;
    model.eval();
    const Device device = dp.device();
    Tensor loss_total = Tensor::zeros({}, DType::f32, device);
    Tensor correct = Tensor::zeros({}, DType::f32, device);
    const int64_t stride = s_.eval_batch_size * dp.world_size();
    for (int64_t begin = s_.eval_batch_size * dp.rank(); begin < test_set.size(); begin += stride) {
      const auto [images, labels] = test_set.range(begin, std::min(test_set.size(), begin + s_.eval_batch_size));
      const Tensor x = images.to(device), y = labels.to(device);
      const Tensor logits = model(x);
      loss_total = loss_total + cross_entropy(logits, y, -100, 0.0, Reduction::sum);
      correct = correct + sum(eq(argmax(logits, -1), y));
    }
    model.train();
    std::vector<double> sums = {correct.item(), loss_total.item()};
    dp.sum(sums);
    const auto n = static_cast<double>(test_set.size());
    return {sums[0] / n, sums[1] / n};
  }

  const JobContext& ctx_;
  ClassifierSettings s_;
};

}  // namespace

TESSERA_JOB(classifier, [](const JobContext& ctx) { return std::make_unique<ClassifierJob>(ctx); });

}  // namespace tessera::train
