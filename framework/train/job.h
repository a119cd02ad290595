// Training jobs: the registry behind `tessera train`, one job per model family.
//
// defines: tessera::train::Job, JobContext, JobFactory, register_job, make_job, job_names,
//          TESSERA_JOB
//
// A job is what `tessera train` runs for the config key `job` ("classifier"; later "gpt_mtp",
// "gan"). A file in framework/train/jobs/ registers one:
//
//   TESSERA_JOB(classifier, [](const JobContext& ctx) { return std::make_unique<ClassifierJob>(ctx); });
//
// The contract, which `run_training` (launchers/commands/train.cpp) relies on:
//  * the factory (the job's constructor) reads EVERY config key it will ever use, validates it,
//    and builds nothing expensive; the caller then runs `config.check_all_used()`, so a typo
//    fails before any data is loaded. A job should itself call check_all_used() after reading
//    and before validating values, so that a misspelt key is reported as such rather than as
//    the complaint it causes (`train.step` -> "set train.steps");
//  * `run()` trains, writing ctx.out_dir/log.jsonl (log.h), progress lines (progress.h) and
//    ctx.out_dir/checkpoints/step_<N>/ (checkpoint.h); with ctx.resume_dir set it first restores
//    the latest checkpoint there and continues exactly (same losses, bit for bit, on CPU).
// The tessera program links the library as a whole archive, so registrations in any object
// file of the library are kept.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "framework/core/device.h"
#include "framework/train/config.h"

namespace tessera::train {

struct JobContext {
  const Config& config;
  std::string out_dir;     // where log.jsonl and checkpoints/ go
  std::string resume_dir;  // empty: a fresh run
  Device device;           // already checked with require_device
};

class Job {
 public:
  virtual ~Job() = default;
  virtual void run() = 0;
};

using JobFactory = std::function<std::unique_ptr<Job>(const JobContext&)>;

struct JobRegistrar {
  JobRegistrar(const std::string& name, JobFactory factory);
};

void register_job(const std::string& name, JobFactory factory);
// Builds the job `name`; an unknown name is an error listing the registered jobs.
std::unique_ptr<Job> make_job(const std::string& name, const JobContext& context);
std::vector<std::string> job_names();  // sorted

}  // namespace tessera::train

#define TESSERA_JOB(name, factory) \
  static ::tessera::train::JobRegistrar tessera_job_registrar_##name(#name, factory)
