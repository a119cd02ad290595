// The job registry: a name -> factory map filled by static registrars.
#include "framework/train/job.h"

#include <map>

#include "framework/core/error.h"

namespace tessera::train {
namespace {
std::map<std::string, JobFactory>& registry() {
  static std::map<std::string, JobFactory> jobs;
  return jobs;
}
}  // namespace

JobRegistrar::JobRegistrar(const std::string& name, JobFactory factory) { register_job(name, std::move(factory)); }

void register_job(const std::string& name, JobFactory factory) {
  TESSERA_ASSERT(!registry().count(name), "training job \"", name, "\" is registered twice");
  registry()[name] = std::move(factory);
}

std::vector<std::string> job_names() {
  std::vector<std::string> names;
  for (const auto& [name, factory] : registry()) names.push_back(name);
  return names;
}

std::unique_ptr<Job> make_job(const std::string& name, const JobContext& context) {
  auto it = registry().find(name);
  if (it == registry().end()) {
    std::string known;
    for (const auto& n : job_names()) known += (known.empty() ? "" : ", ") + n;
    detail::throw_error(detail::cat("unknown training job \"", name, "\" (config key `job`",
                                    context.config.source().empty() ? "" : " in ", context.config.source(),
                                    "); known jobs: ", known.empty() ? "(none)" : known));
  }
  return it->second(context);
}

}  // namespace tessera::train
