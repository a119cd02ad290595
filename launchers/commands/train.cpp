// `tessera train`: runs the training job named by the config's `job` key.
//
//   tessera train --config examples/classifier/fmnist_mlp.toml --out runs/mlp
//   tessera train --config FILE --set optim.lr=3e-4 --set train.steps=2000 --out runs/a
//   tessera train --config FILE --out runs/a --resume runs/a        # continue after a stop
//
// The order matters and is the contract: read the config, apply --set overrides, resolve the
// device (flag over config key `device`) and check it exists, build the job (it reads every key
// it uses), reject unknown keys, write OUT/config.toml (the effective configuration), then
// train. Everything that can be wrong with the input fails before any data is loaded.
//
// Under a launcher (`mpirun -np N`, `srun`) every rank runs this; only rank 0 (from the
// launcher's environment: MPI starts later, inside the job) checks --out for an earlier run,
// writes OUT/config.toml and prints the header. A rank whose job fails after the process group
// started ends the whole job at once (MPI_Abort) instead of leaving its peers to time out.
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>

#include "framework/core/device.h"
#include "framework/core/error.h"
#include "framework/dist/process_group.h"
#include "framework/train/config.h"
#include "framework/train/distributed.h"
#include "framework/train/job.h"
#include "launchers/command.h"

namespace {

using namespace tessera;

struct TrainOptions {
  std::string config;
  std::vector<std::string> overrides;
  std::string out;
  std::string resume;
  std::string device;
};

void run_train(const TrainOptions& o) {
  train::Config config = train::Config::from_file(o.config);
  for (const auto& assignment : o.overrides) config.set_override(assignment);

  const std::string configured_device = config.get_string("device", "cpu");
  const std::string device_text = o.device.empty() ? configured_device : o.device;
  if (!o.device.empty()) config.set("device", train::TomlValue::of_string(o.device), "--device");
  const Device device = Device::parse(device_text);
  require_device(device);

  const std::string job_name = config.get_string("job");
  const std::string out = o.out.empty() ? o.resume : o.out;
  TESSERA_CHECK(!out.empty(), "tessera train: --out DIR is required (or --resume DIR, which then is also the output)");
  const bool root = train::rank_from_environment() == 0;
  if (!o.resume.empty()) {
    TESSERA_CHECK(std::filesystem::is_directory(o.resume), "--resume ", o.resume, ": no such directory");
  } else if (root) {
    // A fresh run never appends to (or prunes the checkpoints of) an earlier run.
    const auto previous = std::filesystem::path(out);
    TESSERA_CHECK(!std::filesystem::exists(previous / "log.jsonl") && !std::filesystem::exists(previous / "checkpoints"),
                  "--out ", out, " already holds a run (log.jsonl or checkpoints/); continue it with --resume ", out,
                  ", or choose another --out");
  }

  train::JobContext context{config, out, o.resume, device};
  std::unique_ptr<train::Job> job = train::make_job(job_name, context);
  config.check_all_used();

  std::filesystem::create_directories(out);
  const std::string snapshot = (std::filesystem::path(out) / "config.toml").string();
  if (root) {
    std::ofstream(snapshot) << config.to_toml();
    std::cout << "tessera train: job " << job_name << " on " << device.str() << ", config " << o.config
              << (o.resume.empty() ? "" : ", resuming from " + o.resume) << "\n"
              << "  log: " << (std::filesystem::path(out) / "log.jsonl").string()
              << "  checkpoints: " << (std::filesystem::path(out) / "checkpoints").string() << "/step_<N>/"
              << "  effective config: " << snapshot << std::endl;
  }
  try {
    job->run();
  } catch (const std::exception& e) {
    if (!dist::ProcessGroup::initialized() || dist::ProcessGroup::get().world_size() == 1) throw;
    std::fflush(stdout);
    std::cerr << "error: rank " << dist::ProcessGroup::get().rank() << ": " << e.what() << std::endl;
    dist::abort_job(1);
  }
}

const char* kTrainFooter = R"(
What a run writes (OUT is --out):
  OUT/config.toml          the effective configuration: file values, --set overrides and the
                           defaults that applied (feed it back with --config to repeat the run)
  OUT/log.jsonl            one JSON object per line, flushed as written. Training lines hold
                           "step" and "loss" (mean since the previous line) plus "lr", "epoch",
                           "grad_norm"; evaluation lines hold "step" and metrics such as
                           "test_accuracy" and "test_loss".
  OUT/checkpoints/step_<N>/  model.safetensors (weights, loadable by PyTorch's safetensors),
                           optimizer.safetensors and state.json (step, RNG, data position,
                           config snapshot). Written to a temporary directory and renamed into
                           place, so a crash never leaves a torn checkpoint; the last
                           `checkpoint.keep` are kept.
  stdout                   progress lines (step/total, loss, examples/s, elapsed, ETA) and,
                           for the classifier, a final line `test accuracy: 0.xxxx`.

Resuming: --resume DIR restores the latest complete checkpoint under DIR (DIR/checkpoints/
step_<N>/, or DIR itself if it is a step_<N> directory) — model, optimizer, learning-rate
schedule, RNG and data-sampler position — and continues to the configured step count. On CPU
the resumed run's losses equal a straight run's bit for bit. Log lines after the checkpoint's
step (from a run that died later) are dropped from OUT/log.jsonl before training continues.
Without --resume, an OUT that already holds a run (log.jsonl or checkpoints/) is refused.

Several ranks: `mpirun -np N tessera train ...` or `srun --mpi=pmix tessera train ...` trains
data-parallel with no wrapper (train.batch_size is per rank); only rank 0 writes OUT. Keys
dist.timeout_s, dist.allreduce_dtype (fp32|bf16|fp16), dist.first_bucket_mb, dist.bucket_mb,
dist.zero (ZeRO-1), metrics.port (Prometheus /metrics on port + local rank), metrics.dump;
see launchers/README.md.

Config: TOML. `job` picks the training job; the other keys belong to it (see
examples/<family>/*.toml and their READMEs). --set key=value overrides a key; the value is
read as TOML (0.1, true, [1, 2], "text") or else as a plain string. A key that the job does
not read is an error naming the key and where it was set, so typos never pass silently.
`device` (cpu, cuda, cuda:N) may be set in the config; --device wins over it.

Exit status: 0 on success; non-zero with one message on stderr for a bad flag, config key,
value, data file or device.)";

}  // namespace

TESSERA_COMMAND(train,
                "Train a model from a TOML config: writes OUT/log.jsonl (JSON lines), progress to stdout and "
                "OUT/checkpoints/step_<N>/ (safetensors + state.json); --resume DIR continues exactly",
                [](CLI::App& app) {
                  auto opts = std::make_shared<TrainOptions>();
                  app.add_option("--config", opts->config, "TOML config file; its key `job` names the job")
                      ->required()
                      ->check(CLI::ExistingFile);
                  app.add_option("--set", opts->overrides,
                                 "Override a config key: --set optim.lr=3e-4 (repeatable; value read as TOML, "
                                 "else as a string)")
                      ->type_name("KEY=VALUE");
                  app.add_option("--out", opts->out,
                                 "Output directory for log.jsonl, config.toml and checkpoints/ (default: the "
                                 "--resume directory)")
                      ->type_name("DIR");
                  app.add_option("--resume", opts->resume,
                                 "Continue from the latest checkpoint in DIR (DIR/checkpoints/step_<N>/)")
                      ->type_name("DIR");
                  app.add_option("--device", opts->device, "cpu, cuda or cuda:N (overrides config key `device`)")
                      ->type_name("DEVICE");
                  std::string jobs;
                  for (const auto& name : train::job_names()) jobs += (jobs.empty() ? "" : ", ") + name;
                  app.footer(std::string(kTrainFooter) + "\n\nJobs in this build (config key `job`): " +
                             (jobs.empty() ? "(none)" : jobs));
                  app.callback([opts] { run_train(*opts); });
                });
