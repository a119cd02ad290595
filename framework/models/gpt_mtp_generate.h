// Text generation with a GPT-MTP model: KV-cached greedy or nucleus sampling, and greedy
// speculative decoding with the model's own MTP/Medusa heads as drafters.
//
// defines: tessera::models::GenerateOptions, GenerateResult, generate
//
// Decoding keeps one KV cache for the trunk: the prompt is run once (prefill), then each new
// token is one trunk step of length 1 at the next position.
//
// Speculative decoding (greedy only): with m positions in the trunk's cache and the next token
// t_m already fixed by the main head, the heads draft t_{m+1} .. t_{m+D} (depth k predicts
// t_{m+k} from position m-1); the trunk then runs [t_m, draft_1, ..., draft_D] in one step of
// length D+1 and its own greedy choices decide: the longest prefix of drafts that equals them is
// accepted, plus the main head's token after it, and the cache is truncated to what was
// accepted. So every emitted token is the main model's greedy choice: the output is the plain
// greedy output, produced in fewer trunk steps when drafts are accepted.
//  * Medusa heads draft from the trunk's hidden state at m-1 alone.
//  * DeepSeek MTP depth k is a transformer block over all positions, fed h_{k-1} and t_{i+k};
//    each depth keeps its own KV cache. Positions whose inputs are all accepted tokens stay in
//    those caches; the last few (whose inputs include drafts) are recomputed every round from
//    the trunk's stored hidden states, so the drafters always see exactly what training showed
//    them.
// Greedy choices are the first maximal logit, read back to the host; the speculative path and
// the plain path therefore agree token for token whenever the trunk computes a position's
// logits identically in a step of length 1 and in a step of length D+1 (true for the CPU
// kernels; on CUDA a near-tie could in principle resolve differently).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "framework/models/gpt_mtp.h"

namespace tessera::models {

struct GenerateOptions {
  int64_t max_tokens = 64;
  double temperature = 0.0;  // 0: greedy
  double top_p = 1.0;        // nucleus sampling: the smallest set of tokens with this much probability
  uint64_t seed = 0;         // sampling only
  bool speculative = false;  // greedy only; needs a model with MTP heads
  int64_t stop_token = -1;   // stop after emitting this id (-1: never)
};

struct GenerateResult {
  std::vector<int64_t> tokens;  // the generated ids (the prompt not included)
  std::string stop_reason;      // "max_tokens", "stop_token" or "context"
  int64_t trunk_steps = 0;      // trunk forward passes after the prefill
  int64_t drafted = 0;          // speculative: drafted tokens offered for verification
  int64_t accepted = 0;         // speculative: drafted tokens accepted
  std::vector<int64_t> accepted_at_depth;  // speculative: accepted drafts by depth 1..D
  double acceptance_rate() const { return drafted > 0 ? static_cast<double>(accepted) / drafted : 0.0; }
};

// Generates with batch 1 on the model's device (its parameters' device), computing in the
// model's compute dtype, in eval mode without autograd. The prompt must hold 1..context ids.
GenerateResult generate(GptMtp& model, const std::vector<int64_t>& prompt, const GenerateOptions& options);

}  // namespace tessera::models
