// Checkpoints: atomic directories of safetensors files plus a JSON trainer state.
//
// defines: tessera::train::CheckpointFile, Checkpoint, save_checkpoint, latest_checkpoint,
//          load_checkpoint, load_job_checkpoint, checkpoint_dir_name
//
// Layout of RUN/checkpoints/step_<N>/:
//   <name>.safetensors   one per CheckpointFile: "model", "optimizer" (a GAN adds its own)
//   state.json           {"format": "tessera-checkpoint-1", "step": N, "files": [...], ...}
//                        plus whatever the job stores: RNG state, sampler position, loss
//                        window, config snapshot.
// save_checkpoint writes everything into step_<N>.tmp-<pid>/, fsyncs the files, renames the
// directory into place and fsyncs the parent, so a crash at any moment leaves either no
// step_<N> or a complete one; then it deletes all but the newest `keep_last` checkpoints.
// latest_checkpoint ignores .tmp directories and directories without state.json.
// load_checkpoint verifies state.json parses, names the right step and that every listed file
// exists and loads; each error names the file.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "framework/core/device.h"
#include "framework/nn/module.h"

namespace tessera::train {

struct CheckpointFile {
  std::string name;  // file stem: "model" -> model.safetensors
  nn::StateDict tensors;
};

struct Checkpoint {
  std::string dir;
  int64_t step = 0;
  nlohmann::json state;                         // the whole state.json
  std::map<std::string, nn::StateDict> files;  // by stem
  // The file `name`; error names the checkpoint and the files it has.
  const nn::StateDict& file(const std::string& name) const;
};

std::string checkpoint_dir_name(int64_t step);  // "step_<N>"

// A directory written beforehand (ZeRO-1 shards, written by every rank: zero_checkpoint.h) that
// save_checkpoint moves into the checkpoint as `name`/ before renaming it into place.
struct CheckpointSubdir {
  std::string name;
  std::string path;
};

// Writes RUN/checkpoints/step_<step>/ and returns its path. `state` must be a JSON object; its
// keys "format", "step" and "files" are set here. keep_last <= 0 keeps every checkpoint.
// `subdirs` are renamed into the temporary directory (same filesystem), so they appear
// atomically together with the rest; state.json lists them under "subdirs".
std::string save_checkpoint(const std::string& run_dir, int64_t step, const std::vector<CheckpointFile>& files,
                            const nlohmann::json& state, int64_t keep_last,
                            const std::vector<CheckpointSubdir>& subdirs = {});

// The newest complete checkpoint directory for `dir`, which may be a run directory (looks in
// dir/checkpoints/), a checkpoints/ directory, or itself a step_<N> directory. "" if none.
std::string latest_checkpoint(const std::string& dir);

// Loads a checkpoint directory; tensors are placed on `device`.
Checkpoint load_checkpoint(const std::string& checkpoint_dir, Device device = Device::cpu());

// What `--resume` and the commands that read a trained model (`generate`, `sample`, `eval`)
// do: the newest checkpoint under `path` (a run or step_<N> directory), loaded on `device`,
// which must have been written by job `job` and describe its model in state.json; errors name
// `flag` and the path.
Checkpoint load_job_checkpoint(const std::string& flag, const std::string& path, const std::string& job,
                               Device device = Device::cpu());

}  // namespace tessera::train
