// Settings of the `gpt_mtp` training job, read from a Config (framework/train/config.h).
//
// defines: tessera::train::GptMtpSettings, read_gpt_mtp_settings, gpt_mtp_data_hint
//
// Every key, its default and its meaning is listed in framework/train/jobs/gpt_mtp_job.cpp and
// examples/gpt_mtp/README.md. read_gpt_mtp_settings reads every key first, then rejects keys
// nobody read (a typo is reported as such), then validates values with errors that name the
// key. It touches no files.
#pragma once

#include <cstdint>
#include <string>

#include "framework/amp/grad_scaler.h"
#include "framework/models/gpt_mtp.h"
#include "framework/train/config.h"
#include "framework/train/distributed.h"

namespace tessera::train {

struct GptMtpSettings {
  uint64_t seed = 0;
  std::string data_dir;   // holds train.bin and val.bin from `tessera data tokenize`
  std::string tokenizer;  // tok.json copied into the run for `tessera generate` ("" = look in data.dir)
  models::GptMtpOptions model;
  int64_t batch_size = 16;  // sequences per micro-batch
  int64_t seq_len = 0;      // tokens per sequence (T); model.context when not set
  int64_t steps = 0;
  int64_t grad_accum = 1;   // micro-batches per optimizer step
  double grad_clip = 1.0;   // 0: off
  int64_t stop_at = 0;
  double time_limit_minutes = 0;  // 0: off; otherwise stop (eval + checkpoint) once this much wall time has passed
  std::string precision = "auto";  // auto (bf16 on CUDA, f32 on CPU) | f32 | bf16 | fp16 (loss scaling)
  double lr = 3e-4, weight_decay = 0.1, beta1 = 0.9, beta2 = 0.95, eps = 1e-8;
  std::string schedule = "warmup_cosine";
  int64_t warmup_steps = 0;
  double min_lr = 0.0;
  int64_t eval_every = 0;       // 0: at the end only
  int64_t eval_batch_size = 0;  // 0: batch_size
  int64_t eval_max_batches = 0; // 0: the whole validation split
  int64_t log_every = 10;
  int64_t checkpoint_every = 0;  // 0: at the end only
  int64_t checkpoint_keep = 3;
  DistSettings dist;               // dist.*, metrics.* (framework/train/distributed.h)
  amp::GradScalerOptions scaler;   // amp.* (fp16 only)
};

GptMtpSettings read_gpt_mtp_settings(const Config& config);

// What to run to create data.dir's shards (for errors about missing data).
std::string gpt_mtp_data_hint(const std::string& data_dir, int64_t vocab_size);

}  // namespace tessera::train
