// Checkpoints: write to a temporary directory, fsync, rename; read back with checks.
#include "framework/train/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "framework/core/error.h"
#include "framework/train/safetensors.h"

namespace tessera::train {
namespace {

namespace fs = std::filesystem;

constexpr const char* kFormat = "tessera-checkpoint-1";

void fsync_path(const fs::path& path, bool directory) {
  const int fd = ::open(path.c_str(), directory ? O_RDONLY | O_DIRECTORY : O_RDONLY);
  TESSERA_CHECK(fd >= 0, "checkpoint: cannot open ", path.string(), " to sync it: ", std::strerror(errno));
  const int rc = ::fsync(fd);
  const int err = errno;
  ::close(fd);
  TESSERA_CHECK(rc == 0, "checkpoint: cannot sync ", path.string(), ": ", std::strerror(err));
}

// step_<N> directories directly under `checkpoints` (complete ones only), by step.
std::vector<std::pair<int64_t, fs::path>> list_checkpoints(const fs::path& checkpoints) {
  std::vector<std::pair<int64_t, fs::path>> out;
  std::error_code ec;
  if (!fs::is_directory(checkpoints, ec)) return out;
  static const std::regex name("step_([0-9]{1,18})");
  for (const auto& entry : fs::directory_iterator(checkpoints, ec)) {
    std::smatch m;
    const std::string base = entry.path().filename().string();
    if (!entry.is_directory() || !std::regex_match(base, m, name)) continue;
    if (!fs::exists(entry.path() / "state.json")) continue;
    out.emplace_back(std::stoll(m[1].str()), entry.path());
  }
  std::sort(out.begin(), out.end());
  return out;
}

void write_text(const fs::path& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.flush();
  TESSERA_CHECK(out.good(), "checkpoint: cannot write ", path.string(), " (disk full?)");
}

}  // namespace

const nn::StateDict& Checkpoint::file(const std::string& name) const {
  auto it = files.find(name);
  if (it == files.end()) {
    std::string have;
    for (const auto& [stem, sd] : files) have += (have.empty() ? "" : ", ") + stem + ".safetensors";
    detail::throw_error(detail::cat("checkpoint ", dir, " has no ", name, ".safetensors (it has: ", have, ")"));
  }
  return it->second;
}

std::string checkpoint_dir_name(int64_t step) { return "step_" + std::to_string(step); }

std::string save_checkpoint(const std::string& run_dir, int64_t step, const std::vector<CheckpointFile>& files,
                            const nlohmann::json& state, int64_t keep_last,
                            const std::vector<CheckpointSubdir>& subdirs) {
  TESSERA_CHECK(step >= 0, "save_checkpoint: negative step ", step);
  TESSERA_CHECK(state.is_object(), "save_checkpoint: the trainer state must be a JSON object");
  const fs::path checkpoints = fs::path(run_dir) / "checkpoints";
  const fs::path final_dir = checkpoints / checkpoint_dir_name(step);
  const fs::path tmp = checkpoints / (checkpoint_dir_name(step) + ".tmp-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::create_directories(checkpoints, ec);
  TESSERA_CHECK(!ec, "checkpoint: cannot create ", checkpoints.string(), ": ", ec.message());
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  TESSERA_CHECK(!ec, "checkpoint: cannot create ", tmp.string(), ": ", ec.message());

  try {
    nlohmann::json full = state;
    full["format"] = kFormat;
    full["step"] = step;
    full["files"] = nlohmann::json::array();
    const std::map<std::string, std::string> metadata = {{"format", "pt"}, {"step", std::to_string(step)}};
    for (const auto& f : files) {
      const std::string file_name = f.name + ".safetensors";
      save_safetensors((tmp / file_name).string(), f.tensors, metadata);
      full["files"].push_back(file_name);
      fsync_path(tmp / file_name, false);
    }
    if (!subdirs.empty()) full["subdirs"] = nlohmann::json::array();
    for (const auto& sub : subdirs) {
      TESSERA_CHECK(fs::is_directory(sub.path), "checkpoint: ", sub.path, " (to become ", sub.name, "/) is missing");
      fs::rename(sub.path, tmp / sub.name);
      full["subdirs"].push_back(sub.name);
    }
    write_text(tmp / "state.json", full.dump(2) + "\n");
    fsync_path(tmp / "state.json", false);
    fsync_path(tmp, true);
    // Re-saving a step (a run resumed from an older checkpoint): move the old one aside first.
    if (fs::exists(final_dir)) {
      const fs::path old = checkpoints / (checkpoint_dir_name(step) + ".old-" + std::to_string(::getpid()));
      fs::rename(final_dir, old);
      fs::rename(tmp, final_dir);
      fs::remove_all(old);
    } else {
      fs::rename(tmp, final_dir);
    }
    fsync_path(checkpoints, true);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }

  if (keep_last > 0) {
    auto all = list_checkpoints(checkpoints);
    for (size_t i = 0; i + static_cast<size_t>(keep_last) < all.size(); ++i) fs::remove_all(all[i].second, ec);
  }
  return final_dir.string();
}

std::string latest_checkpoint(const std::string& dir) {
  const fs::path path(dir);
  std::error_code ec;
  static const std::regex step_name("step_[0-9]{1,18}");
  if (std::regex_match(path.filename().string(), step_name) && fs::exists(path / "state.json", ec))
    return path.string();
  auto found = list_checkpoints(path / "checkpoints");
  if (found.empty()) found = list_checkpoints(path);
  return found.empty() ? "" : found.back().second.string();
}

Checkpoint load_checkpoint(const std::string& checkpoint_dir, Device device) {
  const fs::path dir(checkpoint_dir);
  const fs::path state_path = dir / "state.json";
  std::ifstream in(state_path);
  TESSERA_CHECK(in.good(), "checkpoint ", dir.string(), " is incomplete: ", state_path.string(), " is missing");
  std::ostringstream text;
  text << in.rdbuf();
  Checkpoint ckpt;
  ckpt.dir = dir.string();
  ckpt.state = nlohmann::json::parse(text.str(), nullptr, false);
  TESSERA_CHECK(!ckpt.state.is_discarded() && ckpt.state.is_object(), "checkpoint state ", state_path.string(),
                " is not valid JSON");
  TESSERA_CHECK(ckpt.state.value("format", "") == kFormat, "checkpoint state ", state_path.string(),
                " has format \"", ckpt.state.value("format", "(none)"), "\"; expected \"", kFormat, "\"");
  TESSERA_CHECK(ckpt.state.contains("step") && ckpt.state["step"].is_number_integer(), "checkpoint state ",
                state_path.string(), " has no integer \"step\"");
  ckpt.step = ckpt.state["step"].get<int64_t>();
  TESSERA_CHECK(ckpt.state.contains("files") && ckpt.state["files"].is_array(), "checkpoint state ",
                state_path.string(), " has no \"files\" list");
  if (ckpt.state.contains("subdirs") && ckpt.state["subdirs"].is_array())
    for (const auto& name : ckpt.state["subdirs"])
      TESSERA_CHECK(name.is_string() && fs::is_directory(dir / name.get<std::string>()), "checkpoint ", dir.string(),
                    " is incomplete: its directory ", name.dump(), " is missing");
  for (const auto& name : ckpt.state["files"]) {
    TESSERA_CHECK(name.is_string(), "checkpoint state ", state_path.string(), " lists a file that is not a string");
    const std::string file_name = name.get<std::string>();
    const fs::path file_path = dir / file_name;
    TESSERA_CHECK(fs::exists(file_path), "checkpoint ", dir.string(), " is incomplete: ", file_path.string(),
                  " is missing");
    const std::string stem = fs::path(file_name).stem().string();
    try {
      ckpt.files[stem] = load_safetensors(file_path.string(), device);
    } catch (const Error& e) {
      detail::throw_error(detail::cat("checkpoint file ", file_path.string(), " cannot be loaded: ", e.what()));
    }
  }
  return ckpt;
}

Checkpoint load_job_checkpoint(const std::string& flag, const std::string& path, const std::string& job,
                               Device device) {
  const std::string dir = latest_checkpoint(path);
  TESSERA_CHECK(!dir.empty(), flag, " ", path, ": no checkpoint found (expected a run directory with ",
                "checkpoints/step_<N>/, or a step_<N> directory with state.json)");
  Checkpoint ckpt = load_checkpoint(dir, device);
  TESSERA_CHECK(ckpt.state.value("job", "") == job && ckpt.state.contains("model"), flag, " ", dir,
                ": state.json does not describe a model of job \"", job, "\" (job \"", ckpt.state.value("job", "?"),
                "\")");
  return ckpt;
}

}  // namespace tessera::train
