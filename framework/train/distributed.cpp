// DataParallel and the dist.* / metrics.* settings (distributed.h).
#include "framework/train/distributed.h"

#include <cstdlib>
#include <exception>

#include "framework/core/error.h"
#include "framework/dist/ddp.h"
#include "framework/dist/process_group.h"
#include "framework/dist/sync_batch_norm.h"

namespace tessera::train {

DType DistSettings::wire_dtype() const { return dist::parse_allreduce_dtype(allreduce_dtype); }

void DistSettings::validate() const {
  TESSERA_CHECK(timeout_s > 0, "config key `dist.timeout_s` must be positive, got ", timeout_s);
  TESSERA_CHECK(allreduce_dtype == "fp32" || allreduce_dtype == "bf16" || allreduce_dtype == "fp16",
                "config key `dist.allreduce_dtype` is \"", allreduce_dtype, "\"; expected one of: fp32, bf16, fp16");
  TESSERA_CHECK(first_bucket_mb > 0 && bucket_mb > 0, "config keys `dist.first_bucket_mb` and `dist.bucket_mb` ",
                "must be positive, got ", first_bucket_mb, " and ", bucket_mb);
  TESSERA_CHECK(metrics_port >= 0 && metrics_port <= 65535, "config key `metrics.port` must be in [0, 65535] ",
                "(0 = off), got ", metrics_port);
  TESSERA_CHECK(peak_tflops >= 0, "config key `metrics.peak_tflops` must not be negative, got ", peak_tflops);
}

DistSettings read_dist_settings(const Config& c) {
  DistSettings s;
  s.timeout_s = c.get_double("dist.timeout_s", s.timeout_s);
  s.allreduce_dtype = c.get_string("dist.allreduce_dtype", s.allreduce_dtype);
  s.first_bucket_mb = c.get_double("dist.first_bucket_mb", s.first_bucket_mb);
  s.bucket_mb = c.get_double("dist.bucket_mb", s.bucket_mb);
  s.zero = c.get_int("dist.zero", 0) != 0;
  s.metrics_port = c.get_int("metrics.port", 0);
  if (s.metrics_port != 0) s.metrics_address = c.get_string("metrics.address", s.metrics_address);
  s.metrics_dump = c.get_bool("metrics.dump", false);
  s.peak_tflops = c.get_double("metrics.peak_tflops", 0.0);
  return s;
}

int rank_from_environment() {
  for (const char* name : {"OMPI_COMM_WORLD_RANK", "SLURM_PROCID", "PMIX_RANK", "PMI_RANK"}) {
    const char* value = std::getenv(name);
    if (value != nullptr && *value != '\0') return std::atoi(value);
  }
  return 0;
}

DataParallel::DataParallel(const DistSettings& settings, Device requested) : settings_(settings), device_(requested) {
  if (dist::launcher_from_environment() == "none" && !settings.zero) return;
  owns_group_ = !dist::ProcessGroup::initialized();
  group_ = &dist::ProcessGroup::init({.timeout_s = settings.timeout_s});
  rank_ = group_->rank();
  world_ = group_->world_size();
  local_rank_ = group_->local_rank();
  device_ = group_->select_device(requested);
  communicator_ = &group_->communicator(device_);
}

DataParallel::~DataParallel() {
  // With an exception in flight the other ranks may be anywhere: a shutdown barrier would only
  // wait for the timeout. The caller aborts the job instead.
  if (owns_group_ && std::uncaught_exceptions() == 0) dist::ProcessGroup::shutdown();
}

dist::CommStats* DataParallel::stats() const { return group_ != nullptr ? &group_->stats() : nullptr; }

void DataParallel::broadcast_parameters(const nn::Module& module) const {
  if (communicator_ != nullptr) dist::broadcast_parameters(module, *communicator_);
}

void DataParallel::share_buffers(const nn::Module& module) const {
  if (world_ > 1 && !module.named_buffers().empty()) broadcast_parameters(module);
}

int64_t DataParallel::synchronize_batch_norm(nn::Module& module) const {
  return communicator_ != nullptr ? dist::synchronize_batch_norm(module, *communicator_) : 0;
}

void DataParallel::sum(std::vector<double>& values) const {
  if (group_ == nullptr || values.empty()) return;
  Tensor t = Tensor::from_vector(values, {static_cast<int64_t>(values.size())}, DType::f64);
  group_->host_communicator().all_reduce(t, dist::ReduceOp::sum, false, "host sum").wait();
  const double* data = t.data<double>();
  for (size_t i = 0; i < values.size(); ++i) values[i] = data[i];
}

void DataParallel::average(std::vector<double>& values) const {
  if (group_ == nullptr || world_ == 1) return;
  sum(values);
  for (double& v : values) v /= static_cast<double>(world_);
}

bool DataParallel::root_decides(bool flag) const {
  if (group_ == nullptr || world_ == 1) return flag;
  Tensor t = Tensor::full({1}, flag ? 1.0 : 0.0, DType::f32);
  group_->host_communicator().broadcast(t, 0, "root decision").wait();
  return t.data<float>()[0] != 0.0f;
}

uint64_t DataParallel::check_identical(const nn::Module& module) const {
  uint64_t hash = 1469598103934665603ull;  // FNV-1a 64
  auto add = [&hash](const Tensor& t) {
    const Tensor host = t.to(Device::cpu()).contiguous();
    const auto* bytes = static_cast<const unsigned char*>(host.data_ptr());
    const size_t n = static_cast<size_t>(host.numel()) * dtype_size(host.dtype());
    for (size_t i = 0; i < n; ++i) hash = (hash ^ bytes[i]) * 1099511628211ull;
  };
  for (const auto& [name, t] : module.named_parameters()) add(t.detach());
  for (const auto& [name, t] : module.named_buffers()) add(t);
  if (group_ == nullptr || world_ == 1) return hash;
  Tensor mine = Tensor::from_vector(std::vector<int64_t>{static_cast<int64_t>(hash)}, {1});
  Tensor all = Tensor::empty({world_}, DType::i64);
  group_->host_communicator().all_gather(all, mine, "parameter hashes").wait();
  std::string differing;
  for (int r = 1; r < world_; ++r)
    if (all.data<int64_t>()[r] != all.data<int64_t>()[0]) differing += (differing.empty() ? "" : ", ") + std::to_string(r);
  TESSERA_CHECK(differing.empty(), "data parallelism: the parameters of rank(s) ", differing,
                " differ from rank 0's after training (they must be bitwise identical)");
  return hash;
}

}  // namespace tessera::train
