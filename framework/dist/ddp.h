// Reducer: data-parallel gradient averaging in buckets, overlapped with the backward pass.
//
// defines: tessera::dist::Reducer, DdpOptions, NoSyncGuard, BucketPlanEntry, assign_buckets,
//          parse_allreduce_dtype
//
// The bucket life cycle.
//  1. Construction. The parameters that require a gradient are taken in REVERSE registration
//     order — the order in which backward finishes their gradients — and cut greedily into
//     buckets: bucket 0 holds up to `first_bucket_mb` MiB of wire bytes (small, so the first
//     all-reduce starts early in backward), the others up to `bucket_mb`; a parameter larger
//     than the limit gets a bucket of its own; a bucket holds one dtype on one device. Each
//     bucket owns a flat buffer in the wire dtype, allocated once, so addresses repeat step
//     after step. The reducer registers a grad-ready hook on every parameter; the ranks check
//     that they all built the same buckets.
//  2. Backward. When a parameter's gradient is final its hook marks it ready; when the last
//     parameter of a bucket is ready the bucket is ready. Ready buckets are launched strictly in
//     index order — so every rank issues the same collectives in the same order — as soon as all
//     buckets before them have been: the gradients are packed (cast, and for bf16/fp16 wires
//     pre-divided by the world size so the sum cannot overflow) into the bucket's buffer, and an
//     all-reduce (sum) starts: NCCL on the communication stream, MPI_Iallreduce driven by the
//     watchdog thread on the CPU. Communication overlaps the rest of backward.
//  3. finish() (after backward, before clipping and the optimizer step) launches the buckets not
//     launched yet: a parameter without a gradient contributes zeros; a bucket in which NO
//     parameter has a gradient on this rank is skipped. It then waits for every launched bucket
//     and writes the average back into each parameter's .grad (converted to the gradient's
//     dtype, normally f32: low-precision wires accumulate into f32 master gradients; f32 wires
//     divide by the world size here). Gradients that were undefined stay undefined, so the
//     optimizer skips those parameters exactly as a single-rank run would. Then the state resets
//     for the next step.
//
// ASSUMPTION: which parameters receive a gradient in a step is the same on every rank (true for
// GAN alternation, frozen parts, a discriminator that starts late — anything decided by the step
// number and config, not by the data). A rank that skips a bucket another rank sends shows up as
// a collective mismatch or a timeout, never as silently wrong numbers.
//
// Gradient accumulation: micro-steps inside `no_sync()` (or with set_require_sync(false)) do no
// communication; the hooks of the final micro-step see the accumulated gradients. A step with
// several backward calls must run all but the last inside no_sync() — a gradient becoming
// ready again after its bucket was sent is an error that says so. `set_enabled(false)` turns
// the reducer off for a module whose gradients are not wanted this step (a GAN's generator
// during the critic step); finish() then does nothing. Change either only between steps.
#pragma once

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "framework/dist/communicator.h"
#include "framework/nn/module.h"

namespace tessera::dist {

struct DdpOptions {
  double first_bucket_mb = 1.0;         // dist.first_bucket_mb
  double bucket_mb = 25.0;              // dist.bucket_mb
  DType allreduce_dtype = DType::f32;   // dist.allreduce_dtype: f32, bf16 or f16 on the wire
};

// "fp32"/"f32", "bf16", "fp16"/"f16" -> the dtype; anything else is an error naming the key.
DType parse_allreduce_dtype(const std::string& text);

// Bucket assignment on its own (tested without MPI). Parameters in registration order; returns
// buckets as lists of parameter indices, bucket 0 first (reverse registration order inside).
struct BucketPlanEntry {
  int64_t numel = 0;
  DType dtype = DType::f32;
  Device device;
};
std::vector<std::vector<size_t>> assign_buckets(const std::vector<BucketPlanEntry>& params, size_t wire_element_bytes,
                                                double first_bucket_mb, double bucket_mb);

class Reducer {
 public:
  // Parameters must already hold the same values on every rank (broadcast_parameters).
  // Collective: every rank constructs its reducer at the same point.
  Reducer(const nn::Module& module, Communicator& communicator, DdpOptions options = {});
  Reducer(std::vector<std::pair<std::string, Tensor>> named_parameters, Communicator& communicator,
          DdpOptions options = {});
  ~Reducer();
  Reducer(const Reducer&) = delete;
  Reducer& operator=(const Reducer&) = delete;

  // After backward: see step 3 above. Does nothing while sync is off or the reducer disabled.
  void finish();

  bool require_sync() const;
  void set_require_sync(bool on);
  bool enabled() const;
  void set_enabled(bool on);

  struct BucketInfo {
    std::vector<std::string> parameters;  // in the order they sit in the buffer
    int64_t numel = 0;
    DType dtype = DType::f32;  // parameter dtype (the buffer is in the wire dtype)
    Device device;
  };
  std::vector<BucketInfo> buckets() const;
  const DdpOptions& options() const;
  // Of the last finished step: buckets launched from hooks during backward (overlap), launched
  // by finish(), and skipped for lack of gradients.
  int64_t launched_in_backward() const;
  int64_t launched_in_finish() const;
  int64_t skipped() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

// Turns communication off for its scope (gradient-accumulation micro-steps).
class NoSyncGuard {
 public:
  explicit NoSyncGuard(Reducer& reducer) : reducer_(reducer), previous_(reducer.require_sync()) {
    reducer_.set_require_sync(false);
  }
  ~NoSyncGuard() { reducer_.set_require_sync(previous_); }
  NoSyncGuard(const NoSyncGuard&) = delete;
  NoSyncGuard& operator=(const NoSyncGuard&) = delete;

 private:
  Reducer& reducer_;
  bool previous_;
};

}  // namespace tessera::dist
