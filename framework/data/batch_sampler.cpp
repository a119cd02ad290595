// BatchSampler: Philox-driven Fisher-Yates permutations, sliced per rank.
#include "framework/data/batch_sampler.h"

#include <numeric>

#include "framework/core/error.h"
#include "kernels/philox.h"

namespace tessera::data {

std::vector<int64_t> epoch_permutation(int64_t n, uint64_t seed, int64_t epoch) {
  TESSERA_CHECK(n >= 0 && n < (int64_t{1} << 34), "epoch_permutation: bad dataset size ", n);
  TESSERA_CHECK(epoch >= 0 && epoch < (int64_t{1} << 31), "epoch_permutation: bad epoch ", epoch);
  std::vector<int64_t> perm(static_cast<size_t>(n));
  std::iota(perm.begin(), perm.end(), int64_t{0});
  // Draw k (k = 0, 1, ...) is lane k % 4 of Philox block (epoch << 32) + k / 4; a 32-bit draw
  // becomes an index in [0, i] by Lemire's multiply-shift (bias below 2^-14 for i < 2^18).
  const uint64_t base = static_cast<uint64_t>(epoch) << 32;
  kernels::PhiloxBlock block{};
  for (int64_t i = n - 1, k = 0; i > 0; --i, ++k) {
    if (k % 4 == 0) block = kernels::philox4x32(seed, base + static_cast<uint64_t>(k / 4));
    const uint64_t bits = block.x[k % 4];
    const auto j = static_cast<int64_t>((bits * static_cast<uint64_t>(i + 1)) >> 32);
    std::swap(perm[static_cast<size_t>(i)], perm[static_cast<size_t>(j)]);
  }
  return perm;
}

BatchSampler::BatchSampler(int64_t dataset_size, int64_t global_batch, uint64_t seed, int rank, int world,
                           bool shuffle)
    : dataset_size_(dataset_size), global_batch_(global_batch), seed_(seed), rank_(rank), world_(world),
      shuffle_(shuffle) {
  TESSERA_CHECK(world >= 1 && rank >= 0 && rank < world, "BatchSampler: rank ", rank, " is not in a world of ",
                world);
  TESSERA_CHECK(global_batch >= 1, "BatchSampler: batch size must be positive, got ", global_batch);
  TESSERA_CHECK(global_batch % world == 0, "BatchSampler: the global batch size ", global_batch,
                " is not divisible by the world size ", world, " (each rank takes an equal micro-batch)");
  TESSERA_CHECK(global_batch <= dataset_size, "BatchSampler: the global batch size ", global_batch,
                " is larger than the dataset (", dataset_size, " examples)");
}

void BatchSampler::ensure_permutation() {
  if (permutation_epoch_ == state_.epoch) return;
  if (shuffle_) {
    permutation_ = epoch_permutation(dataset_size_, seed_, state_.epoch);
  } else {
    permutation_.resize(static_cast<size_t>(dataset_size_));
    std::iota(permutation_.begin(), permutation_.end(), int64_t{0});
  }
  permutation_epoch_ = state_.epoch;
}

std::vector<int64_t> BatchSampler::next() {
  if (state_.position >= batches_per_epoch()) {
    ++state_.epoch;
    state_.position = 0;
  }
  ensure_permutation();
  const int64_t micro = micro_batch();
  const auto start = static_cast<size_t>(state_.position * global_batch_ + rank_ * micro);
  std::vector<int64_t> out(permutation_.begin() + static_cast<std::ptrdiff_t>(start),
                           permutation_.begin() + static_cast<std::ptrdiff_t>(start + static_cast<size_t>(micro)));
  ++state_.position;
  return out;
}

void BatchSampler::restore(const SamplerState& state) {
  TESSERA_CHECK(state.epoch >= 0 && state.position >= 0 && state.position <= batches_per_epoch(),
                "BatchSampler: cannot restore position (epoch ", state.epoch, ", batch ", state.position,
                "): an epoch has ", batches_per_epoch(), " batches of ", global_batch_,
                " (was the batch size or dataset changed?)");
  state_ = state;
}

}  // namespace tessera::data
