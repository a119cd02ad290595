// BatchSampler: deterministic, rank-aware, resumable shuffling of example indices into batches.
//
// defines: tessera::data::BatchSampler, SamplerState, epoch_permutation
//
// Every epoch is a permutation of [0, N) drawn by Fisher-Yates from Philox with key `seed` and
// counters starting at `epoch << 32` (so (seed, epoch) alone fixes it, on any machine). The
// permutation is cut into global batches of `global_batch` examples (a final partial batch is
// dropped, so every rank always gets a full micro-batch); rank r of `world` takes the slice
// [r * micro, (r + 1) * micro) of each global batch, micro = global_batch / world. The examples
// of global step k are thus the same for every world size — a 4-rank run sees what a 1-rank
// run sees. The position is (epoch, global batches consumed in that epoch); `state()` saves it
// in a checkpoint and `restore()` continues exactly where it was.
#pragma once

#include <cstdint>
#include <vector>

namespace tessera::data {

struct SamplerState {
  int64_t epoch = 0;
  int64_t position = 0;  // global batches already taken in `epoch`
  bool operator==(const SamplerState&) const = default;
};

// The permutation of [0, n) for (seed, epoch).
std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch);

class BatchSampler {
 public:
  // shuffle = false walks the examples in order every epoch (evaluation, debugging).
  BatchSampler(int64_t dataset_size, int64_t global_batch, uint64_t seed, int rank = 0, int world = 1,
               bool shuffle = true);

  // This rank's indices for the next global batch (micro_batch() of them); rolls over epochs.
  std::vector<int64_t> next();

  int64_t global_batch() const { return global_batch_; }
  int64_t micro_batch() const { return global_batch_ / world_; }
  int64_t batches_per_epoch() const { return dataset_size_ / global_batch_; }
  SamplerState state() const { return state_; }
  // Continues from a saved position (any epoch; position at most batches_per_epoch()).
  void restore(const SamplerState& state);

 private:
  void ensure_permutation();

  int64_t dataset_size_;
  int64_t global_batch_;
  uint64_t seed_;
  int rank_;
  int world_;
  bool shuffle_;
  SamplerState state_;
  int64_t permutation_epoch_ = -1;
  std::vector<int64_t> permutation_;
};

}  // namespace tessera::data
