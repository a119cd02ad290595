// Embedding layer (embedding.h).
#include "framework/nn/embedding.h"

#include "framework/nn/init.h"
#include "framework/ops/index.h"

namespace tessera::nn {

Embedding::Embedding(int64_t num_embeddings, int64_t dim, Generator* gen) : num_embeddings_(num_embeddings), dim_(dim) {
  TESSERA_CHECK(num_embeddings > 0 && dim > 0, "Embedding: sizes must be positive, got num_embeddings=",
                num_embeddings, " dim=", dim);
  weight_ = register_parameter("weight", Tensor::empty({num_embeddings, dim}));
  init::normal_(weight_, 0.0, 1.0, gen);
}

Tensor Embedding::forward(const Tensor& indices) { return embedding(weight_, indices); }

}  // namespace tessera::nn
