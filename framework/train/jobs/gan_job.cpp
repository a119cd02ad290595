// The `gan` training job: DCGAN, WGAN (weight clipping) and WGAN-GP (gradient penalty) on
// Fashion-MNIST with the networks of framework/models/gan.h.
//
//   tessera train --config examples/gan/dcgan.toml --out runs/dcgan
//   tessera train --config examples/gan/wgan_gp.toml --out runs/wgan_gp --resume runs/wgan_gp
//
// Config keys: gan_settings.h. One step (train.steps counts them) is gan.n_critic critic steps,
// each on a fresh real batch and fresh noise, then one generator step:
//   critic:    fake = G(z) without gradient (the last critic step keeps G's graph for the
//              generator step, as PyTorch's DCGAN example reuses its fake batch); the critic
//              sees fake.detach(), so the generator's parameters stay idle (no gradient, no
//              communication: its optimizer's sync is off), and
//              bce:       loss_d = bce(D(real), 1) + bce(D(fake), 0)
//              wgan_clip: loss_d = mean D(fake) - mean D(real), then every critic weight is
//                         clamped to [-gan.clip, gan.clip]
//              wgan_gp:   the same plus gp_weight * mean((|grad_x D(x_hat)| - 1)^2) at
//                         x_hat = e * real + (1 - e) * fake, e ~ U(0, 1) per image; the gradient
//                         is autograd::grad with create_graph, so the penalty's own gradient
//                         reaches the critic's weights through second derivatives.
//   generator: the critic's parameters stop requiring gradients (nothing is computed or sent
//              for them), loss_g = bce(D(G(z)), 1) or -mean D(G(z)), one generator update.
// Log lines (rank 0): {"step", "loss_d", "loss_g"} plus "wasserstein" (mean D(real) - mean
// D(fake), the critic's estimate; wgan losses) and "gp" (the unweighted penalty; wgan_gp), each
// the mean since the previous line over steps (and critic steps) and ranks. Every sample.every
// steps and at the end, rank 0 writes an 8x8 grid of G(fixed noise) in eval mode (batch-norm
// running statistics) to OUT/samples/step_<N>.png.
//
// Data parallel (`mpirun -np N`): train.batch_size is one rank's batch; the sampler hands rank r
// its slice of each global batch, and the noise (z, e) is drawn for the global batch from the
// shared default generator and sliced the same way, so every rank's generator state stays
// equal and a checkpoint's RNG state is every rank's. Each network has its own
// DataParallelOptimizer (Reducer or ZeRO-1); the idle network's is set_sync(false).
// Batch-norm statistics: by default per rank (each rank normalises with its own batch, as
// PyTorch's BatchNorm2d under DDP does); the running statistics, used only for samples, are
// rank 0's: they are broadcast before every checkpoint and at the end, so all ranks hold
// identical buffers there (check_identical) and a resumed run continues like the straight one.
// With dist.sync_batchnorm = true (and more than one rank) every BatchNorm2d of both networks
// normalises with the statistics of the global batch (DataParallel::synchronize_batch_norm:
// one differentiable all-reduce of [sum, sum of squares, count] per layer call, and its
// gradient's all-reduce in backward, as torch.nn.SyncBatchNorm), so N ranks of b images
// compute what one process of N * b computes; the running statistics are then identical on
// every rank by construction and are not broadcast, which leaves check_identical to prove it.
//
// Checkpoints: generator.safetensors, critic.safetensors, optimizer_g / optimizer_d (plain:
// .safetensors; ZeRO: .zero/), state.json with the RNG, the sampler position, the loss window
// and the model description (`tessera sample`, `tessera eval fid`). Resume is bitwise on the CPU.
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <string>

#include "framework/autograd/engine.h"
#include "framework/core/error.h"
#include "framework/core/rng.h"
#include "framework/data/batch_sampler.h"
#include "framework/data/fashion_mnist.h"
#include "framework/data/png.h"
#include "framework/models/gan.h"
#include "framework/ops/ops.h"
#include "framework/optim/adam.h"
#include "framework/optim/rmsprop.h"
#include "framework/train/checkpoint.h"
#include "framework/train/distributed.h"
#include "framework/train/dp_optimizer.h"
#include "framework/train/job.h"
#include "framework/train/jobs/gan_settings.h"
#include "framework/train/log.h"
#include "framework/train/progress.h"
#include "framework/train/train_metrics.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

constexpr int64_t kGridColumns = 8, kGridImages = 64;

// Device sums of the logged values since the last log line.
struct GanWindow {
  Tensor loss_d, loss_g, wasserstein, gp;
  int64_t steps = 0;

  void reset(Device device) {
    for (Tensor* t : {&loss_d, &loss_g, &wasserstein, &gp}) *t = Tensor::zeros({}, DType::f32, device);
    steps = 0;
  }
  // [loss_d, loss_g, wasserstein, gp] sums, averaged over the ranks (collective).
  std::vector<double> values(const DataParallel& dp) const {
    std::vector<double> v = {loss_d.item(), loss_g.item(), wasserstein.item(), gp.item()};
    dp.average(v);
    return v;
  }
  // Every rank's own sums (collective), so that a resumed rank continues its own f32 window:
  // restoring the rank average instead would round differently from the straight run.
  nlohmann::json to_json(const DataParallel& dp) {
    const std::vector<Tensor*> sums = fields();
    std::vector<double> all(sums.size() * static_cast<size_t>(dp.world_size()), 0.0);
    for (size_t k = 0; k < sums.size(); ++k) all[dp.rank() * sums.size() + k] = sums[k]->item();
    dp.sum(all);
    nlohmann::json per_rank = nlohmann::json::array();
    for (int r = 0; r < dp.world_size(); ++r)
      per_rank.push_back(std::vector<double>(all.begin() + r * sums.size(), all.begin() + (r + 1) * sums.size()));
    return {{"steps", steps}, {"per_rank", per_rank}};
  }
  // At another world size each rank takes the rank average (the logged means stay right, the
  // last bits may not).
  void from_json(const nlohmann::json& j, const DataParallel& dp, Device device) {
    steps = j.at("steps").get<int64_t>();
    const auto& per_rank = j.at("per_rank");
    const std::vector<Tensor*> sums = fields();
    for (size_t k = 0; k < sums.size(); ++k) {
      double value = 0.0;
      if (static_cast<int>(per_rank.size()) == dp.world_size()) {
        value = per_rank[dp.rank()][k].get<double>();
      } else {
        for (const auto& r : per_rank) value += r[k].get<double>() / static_cast<double>(per_rank.size());
      }
      *sums[k] = Tensor::scalar(value, DType::f32, device);
    }
  }

 private:
  std::vector<Tensor*> fields() { return {&loss_d, &loss_g, &wasserstein, &gp}; }
};

void set_requires_grad(const nn::Module& module, bool on) {
  for (auto [name, p] : module.named_parameters()) p.set_requires_grad(on);  // handles share the leaf
}

class GanJob : public Job {
 public:
  explicit GanJob(const JobContext& ctx) : ctx_(ctx), s_(read_gan_settings(ctx.config)) {}

  void run() override {
    const auto start = std::chrono::steady_clock::now();
    DataParallel dp(s_.dist, ctx_.device);
    device_ = dp.device();
    const bool root = dp.is_root();
    const data::FashionMnist train_set(s_.data_dir, data::Split::train, data::PixelRange::minus_one_one);
    data::BatchSampler sampler(train_set.size(), s_.batch_size * dp.world_size(), s_.seed, dp.rank(),
                               dp.world_size());

    manual_seed(s_.seed);
    auto g = std::make_shared<models::DcganGenerator>(s_.model);
    auto d = std::make_shared<models::DcganCritic>(s_.model);
    int64_t synchronized_layers = 0;
    for (nn::Module* m : {static_cast<nn::Module*>(g.get()), static_cast<nn::Module*>(d.get())}) {
      m->to(device_);
      dp.broadcast_parameters(*m);
      if (s_.sync_batchnorm) synchronized_layers += dp.synchronize_batch_norm(*m);
    }
    sync_batchnorm_ = synchronized_layers > 0;
    std::unique_ptr<DataParallelOptimizer> opt_g = make_optimizer(dp, *g, s_.optim_g);
    std::unique_ptr<DataParallelOptimizer> opt_d = make_optimizer(dp, *d, s_.optim_d);
    const std::vector<NamedOptimizer> optimizers = {{"optimizer_g", opt_g.get()}, {"optimizer_d", opt_d.get()}};
    Generator sample_gen(s_.sample_seed);
    const Tensor fixed_noise = randn({kGridImages, s_.model.latent}, 0.0, 1.0, DType::f32, device_, &sample_gen);
    TrainMetrics metrics(dp);

    JsonlLog log(ctx_.out_dir, root);
    int64_t step = 0;
    GanWindow window;
    window.reset(device_);
    if (!ctx_.resume_dir.empty()) {
      const Checkpoint ckpt = load_job_checkpoint("--resume", ctx_.resume_dir, "gan", device_);
      const std::string& dir = ckpt.dir;
      const auto& st = ckpt.state;
      g->load_state_dict(ckpt.file("generator"));
      d->load_state_dict(ckpt.file("critic"));
      restore_dp_optimizers(ckpt, optimizers);
      step = ckpt.step;
      default_generator().set_state(st.at("rng").at("seed").get<uint64_t>(), st.at("rng").at("offset").get<uint64_t>());
      sampler.restore({st.at("sampler").at("epoch").get<int64_t>(), st.at("sampler").at("position").get<int64_t>()});
      window.from_json(st.at("loss_window"), dp, device_);
      log.truncate_after(step);
      if (root) std::printf("resumed from %s at step %lld\n", dir.c_str(), static_cast<long long>(step));
    }
    TESSERA_CHECK(step <= s_.steps, "the checkpoint is at step ", step, ", beyond the configured ", s_.steps,
                  " steps (raise train.steps to train further)");
    if (root) {
      std::printf("gan (%s): generator %lld and critic %lld parameters, %lld critic step(s) per generator step, "
                  "batch %lld\n",
                  s_.loss.c_str(), static_cast<long long>(g->parameter_count()),
                  static_cast<long long>(d->parameter_count()), static_cast<long long>(s_.n_critic),
                  static_cast<long long>(s_.batch_size * dp.world_size()));
      const std::string statistics =
          sync_batchnorm_ ? "of the global batch (" + std::to_string(synchronized_layers) + " synchronised layers)"
                          : "per rank";
      if (dp.running())
        std::printf("data parallel: %d rank(s), %s, gradients as %s, batch-norm statistics %s\n", dp.world_size(),
                    opt_g->zero() ? "ZeRO-1" : "DDP buckets", s_.dist.allreduce_dtype.c_str(), statistics.c_str());
    }

    const int64_t first_step = step;
    const int64_t images_per_step = s_.batch_size * (s_.n_critic + 1);  // per rank: real batches + G batch
    Progress progress(s_.steps, s_.log_every, "images", step, root);
    g->train();
    d->train();
    while (step < s_.steps) {
      const auto step_start = std::chrono::steady_clock::now();
      train_step(*g, *d, *opt_g, *opt_d, train_set, sampler, dp, window);
      ++step;
      ++window.steps;
      progress.count(images_per_step * dp.world_size());
      metrics.step(step, std::chrono::duration<double>(std::chrono::steady_clock::now() - step_start).count(), 0,
                   images_per_step, opt_g->scaler());

      if (step % s_.log_every == 0 || step == s_.steps) write_log(log, progress, metrics, dp, step, window);
      if (root && ((s_.sample_every > 0 && step % s_.sample_every == 0) || step == s_.steps))
        progress.note("samples: " + write_samples(*g, fixed_noise, step));
      const bool stopping = step == s_.stop_at && step < s_.steps;
      if ((s_.checkpoint_every > 0 && step % s_.checkpoint_every == 0) || step == s_.steps || stopping) {
        sync_buffers(dp, *g, *d);
        const nlohmann::json state = {
            {"job", "gan"},
            {"rng", {{"seed", default_generator().seed()}, {"offset", default_generator().offset()}}},
            {"sampler", {{"epoch", sampler.state().epoch}, {"position", sampler.state().position}}},
            {"loss_window", window.to_json(dp)},
            {"model", s_.model.to_json()},
            {"loss", s_.loss},
            {"config", ctx_.config.to_json()}};
        std::vector<CheckpointFile> files;
        if (root) {
          files.push_back({"generator", g->state_dict()});
          files.push_back({"critic", d->state_dict()});
        }
        const std::string dir =
            save_dp_checkpoint(dp, ctx_.out_dir, step, std::move(files), state, s_.checkpoint_keep, optimizers);
        progress.note("checkpoint: " + dir);
      }
      if (stopping) {
        finish(dp, *g, *d, metrics);
        if (root)
          std::printf("stopped at step %lld of %lld (train.stop_at); continue with --resume %s\n",
                      static_cast<long long>(step), static_cast<long long>(s_.steps), ctx_.out_dir.c_str());
        std::fflush(stdout);
        return;
      }
    }
    finish(dp, *g, *d, metrics);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    if (root)
      std::printf("trained steps %lld..%lld in %.1f s\n", static_cast<long long>(first_step + 1),
                  static_cast<long long>(s_.steps), seconds);
    std::fflush(stdout);
  }

 private:
  // This rank's rows of a tensor drawn for the whole global batch (dim 0 = global batch).
  Tensor rank_rows(const Tensor& global, const DataParallel& dp) const {
    return global.slice(0, dp.rank() * s_.batch_size, (dp.rank() + 1) * s_.batch_size);
  }
  Tensor noise(const DataParallel& dp) const {
    return rank_rows(randn({s_.batch_size * dp.world_size(), s_.model.latent}, 0.0, 1.0, DType::f32, device_), dp);
  }

  void train_step(models::DcganGenerator& g, models::DcganCritic& d, DataParallelOptimizer& opt_g,
                  DataParallelOptimizer& opt_d, const data::FashionMnist& train_set, data::BatchSampler& sampler,
                  const DataParallel& dp, GanWindow& window) const {
    const double share = 1.0 / static_cast<double>(s_.n_critic);
    opt_g.set_sync(false);
    opt_d.set_sync(true);
    Tensor fake_for_g;  // the last critic step's fake batch, with G's graph
    for (int64_t c = 0; c < s_.n_critic; ++c) {
      const Tensor real = train_set.batch(sampler.next()).first.to(device_);
      const Tensor z = noise(dp);
      Tensor fake;
      if (c + 1 == s_.n_critic) {
        fake_for_g = g(z);
        fake = fake_for_g.detach();
      } else {
        NoGradGuard no_grad;
        fake = g(z);
      }
      opt_d.zero_grad();
      const Tensor d_real = d(real), d_fake = d(fake);
      Tensor loss_d, wasserstein, gp;
      if (s_.loss == "bce") {
        loss_d = binary_cross_entropy_with_logits(d_real, Tensor::ones(d_real.shape(), DType::f32, device_)) +
                 binary_cross_entropy_with_logits(d_fake, Tensor::zeros(d_fake.shape(), DType::f32, device_));
      } else {
        wasserstein = mean(d_real) - mean(d_fake);
        loss_d = -wasserstein;
        if (s_.loss == "wgan_gp") {
          gp = gradient_penalty(d, real, fake, dp);
          loss_d = loss_d + gp * s_.gp_weight;
        }
      }
      opt_d.scale(loss_d).backward();
      opt_d.step();
      if (s_.loss == "wgan_clip") clip_weights(d);
      NoGradGuard no_grad;
      window.loss_d = window.loss_d + loss_d.detach() * share;
      if (wasserstein.defined()) window.wasserstein = window.wasserstein + wasserstein.detach() * share;
      if (gp.defined()) window.gp = window.gp + gp.detach() * share;
    }

    // Generator step: the critic is a fixed function here.
    set_requires_grad(d, false);
    opt_d.set_sync(false);
    opt_g.set_sync(true);
    opt_g.zero_grad();
    const Tensor score = d(fake_for_g);
    const Tensor loss_g = s_.loss == "bce"
                              ? binary_cross_entropy_with_logits(score, Tensor::ones(score.shape(), DType::f32, device_))
                              : -mean(score);
    opt_g.scale(loss_g).backward();
    opt_g.step();
    set_requires_grad(d, true);
    NoGradGuard no_grad;
    window.loss_g = window.loss_g + loss_g.detach();
  }

  // mean over the images of (|grad_x D(x_hat)| - 1)^2, differentiable in D's parameters.
  Tensor gradient_penalty(models::DcganCritic& d, const Tensor& real, const Tensor& fake, const DataParallel& dp) const {
    const int64_t b = real.size(0);
    const Tensor e = rank_rows(rand({b * dp.world_size(), 1, 1, 1}, 0.0, 1.0, DType::f32, device_), dp);
    Tensor x_hat = (e * real + (1.0 - e) * fake).detach();
    x_hat.set_requires_grad(true);
    const Tensor score = d(x_hat);
    const Tensor dx = autograd::grad({sum(score)}, {x_hat}, {}, std::nullopt, /*create_graph=*/true)[0];
    const Tensor norms = sqrt(sum(square(dx.reshape({b, -1})), {1}));
    return mean(square(norms - 1.0));
  }

  void clip_weights(const models::DcganCritic& d) const {
    NoGradGuard no_grad;
    for (const auto& [name, p] : d.named_parameters()) copy_into(p, clamp(p, -s_.clip, s_.clip));
  }

  std::unique_ptr<DataParallelOptimizer> make_optimizer(DataParallel& dp, const nn::Module& m,
                                                        const GanOptimizerSettings& o) const {
    const DpOptimizerOptions options{.max_grad_norm = 0.0, .scaler = {.enabled = false}};
    DataParallelOptimizer::NamedParameters named = m.named_parameters();
    if (s_.dist.zero) {
      dist::ZeroOptions z{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps, .weight_decay = 0.0};
      return std::make_unique<DataParallelOptimizer>(dp, std::move(named), z, options);
    }
    std::vector<Tensor> params;
    for (const auto& [name, p] : named) params.push_back(p);
    DataParallelOptimizer::PlainOptimizers plain;
    if (o.name == "rmsprop") {
      optim::RmspropOptions r{.lr = o.lr, .alpha = o.alpha, .eps = o.eps, .weight_decay = o.weight_decay};
      plain.emplace_back("", std::make_unique<optim::RMSprop>(std::move(params), r));
    } else {
      optim::AdamOptions a{.lr = o.lr, .beta1 = o.beta1, .beta2 = o.beta2, .eps = o.eps,
                           .weight_decay = o.weight_decay};
      plain.emplace_back("", std::make_unique<optim::Adam>(std::move(params), a));
    }
    return std::make_unique<DataParallelOptimizer>(dp, std::move(named), std::move(plain), options);
  }

  void write_log(JsonlLog& log, Progress& progress, TrainMetrics& metrics, const DataParallel& dp, int64_t step,
                 GanWindow& window) const {
    const double n = static_cast<double>(window.steps);
    const std::vector<double> v = window.values(dp);
    nlohmann::ordered_json record;
    record["step"] = step;
    record["loss_d"] = v[0] / n;
    record["loss_g"] = v[1] / n;
    if (s_.wgan()) record["wasserstein"] = v[2] / n;
    if (s_.loss == "wgan_gp") record["gp"] = v[3] / n;
    log.write(record);
    metrics.logged(v[0] / n, -1.0);
    char extra[96];
    int used = std::snprintf(extra, sizeof extra, "loss_g %.4f", v[1] / n);
    if (s_.wgan()) used += std::snprintf(extra + used, sizeof extra - used, " | W %.4f", v[2] / n);
    if (s_.loss == "wgan_gp") std::snprintf(extra + used, sizeof extra - used, " | gp %.4f", v[3] / n);
    progress.print(step, v[0] / n, extra);  // "loss" on the progress line is the critic's
    window.reset(device_);
  }

  // OUT/samples/step_<N>.png: G(fixed noise) in eval mode, 8 columns.
  std::string write_samples(models::DcganGenerator& g, const Tensor& fixed_noise, int64_t step) const {
    NoGradGuard no_grad;
    g.eval();
    const Tensor images = g(fixed_noise);
    g.train();
    const data::ImageGrid grid = data::make_image_grid(images, kGridColumns);
    const fs::path dir = fs::path(ctx_.out_dir) / "samples";
    fs::create_directories(dir);
    const std::string path = (dir / ("step_" + std::to_string(step) + ".png")).string();
    data::write_png(path, grid.pixels.data(), grid.height, grid.width, grid.channels);
    return path;
  }

  // Rank 0's batch-norm running statistics on every rank (parameters are equal already);
  // synchronised batch norm keeps them equal by itself.
  void sync_buffers(const DataParallel& dp, const nn::Module& g, const nn::Module& d) const {
    if (sync_batchnorm_) return;
    dp.share_buffers(g);
    dp.share_buffers(d);
  }

  void finish(const DataParallel& dp, const nn::Module& g, const nn::Module& d, TrainMetrics& metrics) const {
    if (dp.running() && dp.world_size() > 1) {
      sync_buffers(dp, g, d);
      const uint64_t hash_g = dp.check_identical(g), hash_d = dp.check_identical(d);
      if (dp.is_root())
        std::printf("parameters bitwise identical on all %d ranks (generator fnv1a64 %016llx, critic %016llx)\n",
                    dp.world_size(), static_cast<unsigned long long>(hash_g), static_cast<unsigned long long>(hash_d));
    }
    metrics.finish(ctx_.out_dir);
    std::fflush(stdout);
  }

  const JobContext& ctx_;
  GanSettings s_;
  Device device_;
  bool sync_batchnorm_ = false;  // batch norm synchronised across the ranks (set in run())
};

}  // namespace

TESSERA_JOB(gan, [](const JobContext& ctx) { return std::make_unique<GanJob>(ctx); });

}  // namespace tessera::train
