// ZeRO-1 sharded checkpoints (zero_checkpoint.h).
#include "framework/train/zero_checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>

#include "framework/core/error.h"
#include "framework/train/safetensors.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;
constexpr const char* kFormat = "tessera-zero1-1";
constexpr const char* kManifest = "manifest.json";

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  if (fd < 0) return;
  ::fsync(fd);
  ::close(fd);
}

// Every rank learns whether any rank failed, so all of them throw together instead of leaving
// the others waiting in the next collective.
void agree(dist::Communicator& comm, const std::string& local_error, const std::string& what) {
  Tensor flag = Tensor::full({1}, local_error.empty() ? 0.0 : 1.0, DType::f32, comm.device());
  comm.all_reduce(flag, dist::ReduceOp::max, false, what).synchronize();
  if (!local_error.empty()) detail::throw_error(local_error);
  TESSERA_CHECK(flag.to(Device::cpu()).item() == 0.0, what, ": failed on another rank (see its message)");
}

std::string error_text(const std::exception& e) { return e.what()[0] ? e.what() : "unknown error"; }

Tensor host_f32(const Tensor& t) {
  Tensor out = Tensor::empty(t.shape(), DType::f32);
  copy_into(out, t);
  return out;
}

}  // namespace

std::string zero_shard_file_name(int rank, int world) {
  char name[64];
  std::snprintf(name, sizeof name, "shard-%05d-of-%05d.safetensors", rank, world);
  return name;
}

void save_sharded(const std::string& dir, const dist::ZeroAdamW& optimizer, const nlohmann::json& metadata) {
  TESSERA_CHECK(metadata.is_object(), "save_sharded: metadata must be a JSON object");
  dist::Communicator& comm = optimizer.communicator();
  const int rank = comm.rank(), world = comm.world_size();
  const fs::path final_dir = fs::path(dir);
  const fs::path tmp_dir = fs::path(dir + ".tmp");

  std::string error;
  if (rank == 0) {
    try {
      fs::remove_all(tmp_dir);
      fs::create_directories(tmp_dir);
    } catch (const std::exception& e) {
      error = detail::cat("save_sharded: cannot create ", tmp_dir.string(), ": ", error_text(e));
    }
  }
  agree(comm, error, "zero checkpoint: create " + tmp_dir.string());

  try {
    nn::StateDict shard = {{"master", host_f32(optimizer.master_shard())},
                           {"exp_avg", host_f32(optimizer.exp_avg_shard())},
                           {"exp_avg_sq", host_f32(optimizer.exp_avg_sq_shard())}};
    save_safetensors((tmp_dir / zero_shard_file_name(rank, world)).string(), shard,
                     {{"format", kFormat}, {"rank", std::to_string(rank)}, {"world_size", std::to_string(world)}});
  } catch (const std::exception& e) {
    error = detail::cat("save_sharded: rank ", rank, " could not write its shard: ", error_text(e));
  }
  agree(comm, error, "zero checkpoint: write shards");

  if (rank == 0) {
    try {
      const dist::ZeroLayout& layout = optimizer.layout();
      nlohmann::json manifest = {{"format", kFormat},
                                 {"world_size", world},
                                 {"total", layout.total},
                                 {"shard", layout.shard},
                                 {"padded", layout.padded},
                                 {"steps", optimizer.steps()},
                                 {"lr", optimizer.lr()},
                                 {"metadata", metadata}};
      const dist::ZeroOptions& o = optimizer.options();
      manifest["options"] = {{"beta1", o.beta1}, {"beta2", o.beta2}, {"eps", o.eps},
                             {"weight_decay", o.weight_decay}, {"reduce_dtype", dtype_name(o.reduce_dtype)}};
      nlohmann::json params = nlohmann::json::array();
      const auto& named = optimizer.named_parameters();
      for (size_t i = 0; i < named.size(); ++i)
        params.push_back({{"name", named[i].first},
                          {"shape", named[i].second.shape()},
                          {"numel", layout.numels[i]},
                          {"offset", layout.offsets[i]},
                          {"step", optimizer.param_steps()[i]}});
      manifest["params"] = params;
      nlohmann::json shards = nlohmann::json::array();
      for (int r = 0; r < world; ++r) shards.push_back(zero_shard_file_name(r, world));
      manifest["shards"] = shards;

      const fs::path manifest_tmp = tmp_dir / (std::string(kManifest) + ".tmp");
      {
        std::ofstream out(manifest_tmp);
        out << manifest.dump(2) << "\n";
        out.flush();
        TESSERA_CHECK(out.good(), "cannot write ", manifest_tmp.string());
      }
      fsync_path(manifest_tmp, false);
      fs::rename(manifest_tmp, tmp_dir / kManifest);
      fsync_path(tmp_dir, true);
      if (fs::exists(final_dir)) fs::remove_all(final_dir);
      fs::rename(tmp_dir, final_dir);
      fsync_path(final_dir.has_parent_path() ? final_dir.parent_path() : fs::path("."), true);
    } catch (const std::exception& e) {
      error = detail::cat("save_sharded: writing the manifest of ", dir, " failed: ", error_text(e));
    }
  }
  agree(comm, error, "zero checkpoint: manifest");
}

nlohmann::json load_sharded(const std::string& dir, dist::ZeroAdamW& optimizer) {
  dist::Communicator& comm = optimizer.communicator();
  const int rank = comm.rank();
  const dist::ZeroLayout& layout = optimizer.layout();
  const auto& named = optimizer.named_parameters();

  std::string error;
  nlohmann::json manifest;
  Tensor master, exp_avg, exp_avg_sq;
  std::vector<int64_t> steps;
  try {
    const fs::path manifest_path = fs::path(dir) / kManifest;
    std::ifstream in(manifest_path);
    TESSERA_CHECK(in.good(), "load_sharded: ", manifest_path.string(), " cannot be read (not a ZeRO checkpoint?)");
    try {
      manifest = nlohmann::json::parse(in);
    } catch (const std::exception& e) {
      detail::throw_error(detail::cat("load_sharded: ", manifest_path.string(), " is not valid JSON: ", e.what()));
    }
    TESSERA_CHECK(manifest.value("format", "") == kFormat, "load_sharded: ", manifest_path.string(),
                  " has format \"", manifest.value("format", ""), "\"; expected \"", kFormat, "\"");
    const auto& params = manifest.at("params");
    TESSERA_CHECK(params.size() == named.size(), "load_sharded: ", manifest_path.string(), " holds ", params.size(),
                  " parameters; the model has ", named.size());
    for (size_t i = 0; i < named.size(); ++i) {
      const std::string name = params[i].at("name").get<std::string>();
      const Shape shape = params[i].at("shape").get<Shape>();
      TESSERA_CHECK(name == named[i].first && shape == named[i].second.shape(), "load_sharded: parameter ", i,
                    " is `", name, "` ", shape_str(shape), " in ", manifest_path.string(), " but `", named[i].first,
                    "` ", shape_str(named[i].second.shape()), " in the model");
      steps.push_back(params[i].at("step").get<int64_t>());
    }
    const int old_world = manifest.at("world_size").get<int>();
    const int64_t old_shard = manifest.at("shard").get<int64_t>();
    TESSERA_CHECK(manifest.at("total").get<int64_t>() == layout.total && old_world > 0 &&
                      old_shard * old_world >= layout.total,
                  "load_sharded: ", manifest_path.string(), " describes a flat space of ",
                  manifest.at("total").get<int64_t>(), " elements; the model has ", layout.total);

    // This rank's new slice [begin, end) of the flat space, from the old shards that overlap it.
    const int64_t begin = static_cast<int64_t>(rank) * layout.shard;
    const int64_t end = std::min(begin + layout.shard, layout.total);
    std::vector<float> buffers[3];
    for (auto& b : buffers) b.assign(static_cast<size_t>(layout.shard), 0.0f);
    const char* names[3] = {"master", "exp_avg", "exp_avg_sq"};
    for (int k = 0; k < old_world && begin < end; ++k) {
      const int64_t old_begin = k * old_shard, old_end = old_begin + old_shard;
      const int64_t lo = std::max(begin, old_begin), hi = std::min(end, old_end);
      if (lo >= hi) continue;
      const fs::path file = fs::path(dir) / manifest.at("shards").at(k).get<std::string>();
      const nn::StateDict tensors = load_safetensors(file.string());
      for (int s = 0; s < 3; ++s) {
        const Tensor* found = nullptr;
        for (const auto& [key, t] : tensors)
          if (key == names[s]) found = &t;
        TESSERA_CHECK(found != nullptr && found->dtype() == DType::f32 && found->numel() == old_shard,
                      "load_sharded: ", file.string(), " lacks an f32 tensor \"", names[s], "\" of ", old_shard,
                      " elements");
        const float* src = found->data<float>() + (lo - old_begin);
        std::copy(src, src + (hi - lo), buffers[s].begin() + (lo - begin));
      }
    }
    master = Tensor::from_vector(buffers[0], {layout.shard});
    exp_avg = Tensor::from_vector(buffers[1], {layout.shard});
    exp_avg_sq = Tensor::from_vector(buffers[2], {layout.shard});
  } catch (const std::exception& e) {
    error = detail::cat("rank ", rank, ": ", error_text(e));
  }
  agree(comm, error, "zero checkpoint: load " + dir);

  optimizer.load_shard_state(master, exp_avg, exp_avg_sq, steps, manifest.at("steps").get<int64_t>());
  optimizer.set_lr(manifest.at("lr").get<double>());
  return manifest.value("metadata", nlohmann::json::object());
}

}  // namespace tessera::train
