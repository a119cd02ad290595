// Parameter initialisers that overwrite a tensor in place.
//
// defines: tessera::nn::init::uniform_, normal_, constant_, zeros_, ones_, kaiming_uniform_,
//          fan_in
//
// Each runs under NoGradGuard and writes into the tensor's own storage, so a registered
// parameter keeps its identity. Random values come from tessera::rand / randn with the given
// Generator (the default generator when null), drawn in the tensor's dtype on its device:
// CPU and CUDA get the same numbers. The formulas follow torch.nn.init.
#pragma once

#include "framework/core/rng.h"
#include "framework/core/tensor.h"

namespace tessera::nn::init {

void uniform_(const Tensor& t, double low, double high, Generator* gen = nullptr);
void normal_(const Tensor& t, double mean = 0.0, double std = 1.0, Generator* gen = nullptr);
void constant_(const Tensor& t, double value);
void zeros_(const Tensor& t);
void ones_(const Tensor& t);
// Input fan of a weight: size(1) times the product of the dims after the second (torch's
// _calculate_fan_in_and_fan_out); needs at least 2 dims.
int64_t fan_in(const Tensor& t);
// U(-bound, bound), bound = gain * sqrt(3 / fan_in), gain = sqrt(2 / (1 + a^2)) (leaky_relu
// gain, fan_in mode): torch.nn.init.kaiming_uniform_(t, a).
void kaiming_uniform_(const Tensor& t, double a = 0.0, Generator* gen = nullptr);

}  // namespace tessera::nn::init
