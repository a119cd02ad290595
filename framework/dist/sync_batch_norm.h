// Synchronised batch norm across data-parallel ranks: a differentiable all-reduce, and the
// switch that makes a model's BatchNorm2d layers normalise with the statistics of the global
// batch (torch.nn.SyncBatchNorm.convert_sync_batchnorm, without swapping modules).
//
// defines: tessera::dist::all_reduce_sum, synchronize_batch_norm
//
// all_reduce_sum(x, communicator, name) returns a new tensor holding the sum of x over all
// ranks (x is left alone); its backward is the all-reduce sum of the incoming gradient, itself
// recorded the same way under create_graph, so second derivatives work. Each call is one
// collective (waited for with the group's timeout: a rank that never arrives is named, see
// watchdog.h), so every rank must make the same calls in the same order, forward and backward
// alike — true when all ranks run the same model on the same shapes, as data parallelism does.
// On cuda the wait only orders the compute stream after NCCL's (no host synchronisation).
//
// synchronize_batch_norm(module, communicator) sets an all_reduce_sum as the replica sum of
// every nn::BatchNorm2d in the module tree, the module itself included (nn/batch_norm.h; the
// statistics math is ops' sync_batch_norm), naming each collective after the layer
// ("sync_batchnorm net.1"), and returns how many layers it switched. At world size 1 there is
// nothing to synchronise: it leaves the layers alone (plain batch norm, the same results bit
// for bit) and returns 0, as torch.nn.SyncBatchNorm falls back to batch_norm. The communicator
// must outlive the module's use; its device must be the module's.
#pragma once

#include <cstdint>
#include <string>

#include "framework/core/tensor.h"
#include "framework/dist/communicator.h"
#include "framework/nn/module.h"

namespace tessera::dist {

Tensor all_reduce_sum(const Tensor& x, Communicator& communicator, const std::string& name = "");

int64_t synchronize_batch_norm(nn::Module& module, Communicator& communicator);

}  // namespace tessera::dist
