// Language-model batches from a token shard: random windows for training, sequential windows for
// evaluation.
//
// defines: tessera::data::LmBatch, LmLoaderOptions, LmLoaderState, LmLoader, LmEvalIterator
//
// A batch row is a window of L = T + 1 + extra_targets consecutive tokens. inputs = window[0, T),
// targets = window[1, T + 1); multi-token-prediction heads take their further-shifted targets
// (head j predicts window[1 + j, T + 1 + j)) from `window` itself.
//
// Training (LmLoader): step s draws a global batch of world_size * batch_size window starts,
// uniform in [0, shard.size() - L], from a Philox generator (framework/core/rng.h). Row g of the
// global batch takes a 64-bit draw from Philox block offset + g / 2, lanes 2 (g % 2) and
// 2 (g % 2) + 1, and the generator advances by take(2 * world_size * batch_size). Every rank
// draws the same global batch and keeps rows [rank * B, (rank + 1) * B), so the sequence of
// global batches depends only on the seed and the global batch size, not on how it is split
// across ranks. state() is (seed, offset, step); restore(state) continues exactly there.
//
// Evaluation (LmEvalIterator): windows start at 0, T, 2T, ... (every token is predicted once)
// while a whole window of L fits; global batch b holds windows [b * W * B, (b + 1) * W * B) with
// W = world_size, and rank r takes its B of them (the last batch may give a rank fewer rows, or
// none).
#pragma once

#include <cstdint>
#include <memory>

#include <nlohmann/json_fwd.hpp>

#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/data/token_shard.h"

namespace tessera::data {

struct LmBatch {
  Tensor inputs;   // i64 [B, T]
  Tensor targets;  // i64 [B, T], inputs shifted by one
  Tensor window;   // i64 [B, T + 1 + extra_targets]
  int64_t rows() const { return inputs.defined() ? inputs.size(0) : 0; }
};

struct LmLoaderOptions {
  int64_t batch_size = 8;     // rows per rank (the micro-batch B)
  int64_t seq_len = 256;      // T
  int64_t extra_targets = 0;  // further future tokens per row, for multi-token prediction
  int rank = 0;
  int world_size = 1;
  uint64_t seed = 0;
};

struct LmLoaderState {
  uint64_t seed = 0;
  uint64_t offset = 0;  // Philox blocks used so far
  int64_t step = 0;     // global batches drawn so far
};
nlohmann::json lm_loader_state_to_json(const LmLoaderState& state);
// Errors name the missing or mistyped field.
LmLoaderState lm_loader_state_from_json(const nlohmann::json& json);

class LmLoader {
 public:
  LmLoader(std::shared_ptr<const TokenShard> shard, LmLoaderOptions options);

  LmBatch next();
  LmLoaderState state() const { return {generator_.seed(), generator_.offset(), step_}; }
  void restore(const LmLoaderState& state);

  int64_t window_length() const { return options_.seq_len + 1 + options_.extra_targets; }
  const LmLoaderOptions& options() const { return options_; }
  // Start positions of the whole global batch that the next call to next() draws (all ranks).
  std::vector<int64_t> peek_global_starts() const;

 private:
  std::vector<int64_t> global_starts(uint64_t offset) const;

  std::shared_ptr<const TokenShard> shard_;
  LmLoaderOptions options_;
  Generator generator_;
  int64_t step_ = 0;
};

class LmEvalIterator {
 public:
  // batch_size, rank, world_size as in LmLoaderOptions (seed is unused).
  LmEvalIterator(std::shared_ptr<const TokenShard> shard, LmLoaderOptions options);

  int64_t num_windows() const { return num_windows_; }
  int64_t num_batches() const;  // global batches until the end
  // Fills `batch` with this rank's rows of the next global batch; false after the last one. A
  // rank with no rows in the last batch gets a batch with 0 rows (and true), so every rank runs
  // the same number of steps.
  bool next(LmBatch& batch);
  void reset() { batch_index_ = 0; }

 private:
  std::shared_ptr<const TokenShard> shard_;
  LmLoaderOptions options_;
  int64_t num_windows_ = 0;
  int64_t batch_index_ = 0;
};

}  // namespace tessera::data
