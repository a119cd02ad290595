// Embedding: a lookup table of learned vectors, rows selected by integer indices.
//
// defines: tessera::nn::Embedding
//
// Parameter "weight" [num_embeddings, dim], initialised N(0, 1) like torch.nn.Embedding.
// forward(indices) with i64/i32 indices of any shape returns [..., dim] (tessera::embedding).
#pragma once

#include "framework/core/rng.h"
#include "framework/nn/module.h"

namespace tessera::nn {

class Embedding : public UnaryModule {
 public:
  Embedding(int64_t num_embeddings, int64_t dim, Generator* gen = nullptr);
  Tensor forward(const Tensor& indices) override;

  int64_t num_embeddings() const { return num_embeddings_; }
  int64_t dim() const { return dim_; }
  const Tensor& weight() const { return weight_; }

 private:
  int64_t num_embeddings_, dim_;
  Tensor weight_;
};

}  // namespace tessera::nn
