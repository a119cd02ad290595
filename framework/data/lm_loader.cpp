// Random and sequential language-model batches from a token shard. Sampling rule: lm_loader.h.
#include "framework/data/lm_loader.h"

#include <algorithm>

#include <nlohmann/json.hpp>

#include "framework/core/error.h"
#include "kernels/philox.h"

namespace tessera::data {

namespace {

void check_options(const TokenShard& shard, const LmLoaderOptions& o, const char* who) {
  TESSERA_CHECK(o.batch_size > 0, who, ": batch size must be positive, got ", o.batch_size);
  TESSERA_CHECK(o.seq_len > 0, who, ": sequence length must be positive, got ", o.seq_len);
  TESSERA_CHECK(o.extra_targets >= 0, who, ": extra_targets must be >= 0, got ", o.extra_targets);
  TESSERA_CHECK(o.world_size > 0 && o.rank >= 0 && o.rank < o.world_size, who, ": rank ", o.rank,
                " is not in [0, world size ", o.world_size, ")");
  const int64_t window = o.seq_len + 1 + o.extra_targets;
  TESSERA_CHECK(shard.size() >= window, who, ": token shard '", shard.path(), "' has ", shard.size(),
                " tokens, fewer than one window of seq_len + 1 + extra_targets = ", window);
}

// Rows `starts` of length `window` -> inputs, targets and the whole window.
LmBatch make_batch(const TokenShard& shard, const std::vector<int64_t>& starts, int64_t seq_len, int64_t window) {
  const int64_t rows = static_cast<int64_t>(starts.size());
  LmBatch batch;
  batch.window = Tensor::empty({rows, window}, DType::i64);
  batch.inputs = Tensor::empty({rows, seq_len}, DType::i64);
  batch.targets = Tensor::empty({rows, seq_len}, DType::i64);
  int64_t* w = batch.window.data<int64_t>();
  int64_t* in = batch.inputs.data<int64_t>();
  int64_t* tg = batch.targets.data<int64_t>();
  for (int64_t r = 0; r < rows; ++r) {
    int64_t* row = w + r * window;
    shard.copy_to(starts[r], window, row);
    std::copy(row, row + seq_len, in + r * seq_len);
    std::copy(row + 1, row + 1 + seq_len, tg + r * seq_len);
  }
  return batch;
}

}  // namespace

nlohmann::json lm_loader_state_to_json(const LmLoaderState& state) {
  return {{"seed", state.seed}, {"offset", state.offset}, {"step", state.step}};
}

LmLoaderState lm_loader_state_from_json(const nlohmann::json& json) {
  LmLoaderState state;
  try {
    state.seed = json.at("seed").get<uint64_t>();
    state.offset = json.at("offset").get<uint64_t>();
    state.step = json.at("step").get<int64_t>();
  } catch (const nlohmann::json::exception& e) {
    TESSERA_CHECK(false, "data loader state: expected {\"seed\", \"offset\", \"step\"} integers, got ", json.dump(),
                  " (", e.what(), ")");
  }
  TESSERA_CHECK(state.step >= 0, "data loader state: step ", state.step, " is negative");
  return state;
}

// ---------------------------------------------------------------------------------------------
// Training loader

LmLoader::LmLoader(std::shared_ptr<const TokenShard> shard, LmLoaderOptions options)
    : shard_(std::move(shard)), options_(options), generator_(options.seed) {
  TESSERA_CHECK(shard_ != nullptr, "lm loader: no token shard");
  check_options(*shard_, options_, "lm loader");
}

std::vector<int64_t> LmLoader::global_starts(uint64_t offset) const {
  const int64_t rows = options_.batch_size * options_.world_size;
  const uint64_t choices = static_cast<uint64_t>(shard_->size() - window_length() + 1);
  std::vector<int64_t> starts(rows);
  for (int64_t g = 0; g < rows; ++g) {
    const kernels::PhiloxBlock block = kernels::philox4x32(generator_.seed(), offset + g / 2);
    const int lane = 2 * static_cast<int>(g % 2);
    const uint64_t bits = (static_cast<uint64_t>(block.x[lane]) << 32) | block.x[lane + 1];
    // The modulo bias is below choices / 2^64: negligible for any shard.
    starts[g] = static_cast<int64_t>(bits % choices);
  }
  return starts;
}

std::vector<int64_t> LmLoader::peek_global_starts() const { return global_starts(generator_.offset()); }

LmBatch LmLoader::next() {
  const int64_t rows = options_.batch_size * options_.world_size;
  const uint64_t offset = generator_.take(2 * rows);
  const std::vector<int64_t> global = global_starts(offset);
  const auto first = global.begin() + options_.rank * options_.batch_size;
  const std::vector<int64_t> mine(first, first + options_.batch_size);
  ++step_;
  return make_batch(*shard_, mine, options_.seq_len, window_length());
}

void LmLoader::restore(const LmLoaderState& state) {
  TESSERA_CHECK(state.step >= 0, "lm loader: restoring a negative step ", state.step);
  generator_.set_state(state.seed, state.offset);
  step_ = state.step;
}

// ---------------------------------------------------------------------------------------------
// Evaluation iterator

LmEvalIterator::LmEvalIterator(std::shared_ptr<const TokenShard> shard, LmLoaderOptions options)
    : shard_(std::move(shard)), options_(options) {
  TESSERA_CHECK(shard_ != nullptr, "lm eval iterator: no token shard");
  check_options(*shard_, options_, "lm eval iterator");
  // Window j starts at j * T and needs j * T + T + 1 + extra <= size.
  num_windows_ = (shard_->size() - 1 - options_.extra_targets) / options_.seq_len;
}

int64_t LmEvalIterator::num_batches() const {
  const int64_t global = options_.batch_size * options_.world_size;
  return (num_windows_ + global - 1) / global;
}

bool LmEvalIterator::next(LmBatch& batch) {
  if (batch_index_ >= num_batches()) return false;
  const int64_t global = options_.batch_size * options_.world_size;
  const int64_t first = batch_index_ * global + options_.rank * options_.batch_size;
  const int64_t last = std::min(first + options_.batch_size, num_windows_);
  std::vector<int64_t> starts;
  for (int64_t j = first; j < last; ++j) starts.push_back(j * options_.seq_len);
  ++batch_index_;
  batch = make_batch(*shard_, starts, options_.seq_len, options_.seq_len + 1 + options_.extra_targets);
  return true;
}

}  // namespace tessera::data
