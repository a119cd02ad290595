// ZeRO-1 checkpoints: one safetensors shard per rank plus a JSON manifest, loadable at any world
// size (re-sharding on load).
//
// defines: tessera::train::save_sharded, load_sharded, zero_shard_file_name
//
// Layout of DIR:
//   manifest.json   {"format": "tessera-zero1-1", "world_size": W, "total": T, "shard": S,
//                    "padded": W*S, "steps": N, "lr": ..., "options": {...},
//                    "params": [{"name", "shape", "numel", "offset", "step"}, ...],
//                    "shards": ["shard-00000-of-0000W.safetensors", ...], "metadata": {...}}
//   shard-<r>-of-<W>.safetensors   tensors "master", "exp_avg", "exp_avg_sq": f32 [S], rank r's
//                    slice [r*S, (r+1)*S) of the flat parameter space (dist/zero.h); the
//                    elements past T are padding (zeros).
// The flat space depends only on the parameters (registration order), not on the world size,
// so any world size can read any other's checkpoint: rank r of the new world needs the
// elements [r*S', (r+1)*S') and reads only the old shards that overlap them.
//
// Saving is collective and atomic as a whole: rank 0 creates DIR.tmp (removing leftovers), every
// rank writes its shard there (each file written to a temporary name, fsynced and renamed),
// the ranks agree that every write succeeded, then rank 0 writes the manifest, renames DIR.tmp
// to DIR (replacing an older DIR) and fsyncs the parent. A crash leaves either the old DIR or
// the new one complete. On several nodes DIR must be on a filesystem they all share. Loading
// is collective too; errors (a missing shard, a manifest for other parameters) are reported on
// every rank, naming the file. This layer (train) sits above dist, which does not know files.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "framework/dist/zero.h"

namespace tessera::train {

std::string zero_shard_file_name(int rank, int world);  // "shard-00001-of-00004.safetensors"

// `metadata` (a JSON object) is stored in the manifest and returned by load_sharded.
void save_sharded(const std::string& dir, const dist::ZeroAdamW& optimizer,
                  const nlohmann::json& metadata = nlohmann::json::object());

// Restores master weights, moments, step counts and learning rate, and the parameters (from
// the masters), from a checkpoint written at any world size. Returns the stored metadata.
nlohmann::json load_sharded(const std::string& dir, dist::ZeroAdamW& optimizer);

}  // namespace tessera::train
