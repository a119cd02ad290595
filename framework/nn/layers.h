// All layers. Include this from models.
//
// brings in: Module, UnaryModule, StateDict (module.h), init (init.h), Linear, Embedding,
//            LayerNorm, RMSNorm, Dropout, Activation, Sequential, MLP, Conv2d,
//            ConvTranspose2d, BatchNorm2d, GroupNorm, AvgPool2d, Upsample, Flatten
#pragma once

#include "framework/nn/activation.h"
#include "framework/nn/batch_norm.h"
#include "framework/nn/conv.h"
#include "framework/nn/dropout.h"
#include "framework/nn/embedding.h"
#include "framework/nn/init.h"
#include "framework/nn/linear.h"
#include "framework/nn/mlp.h"
#include "framework/nn/module.h"
#include "framework/nn/norm.h"
#include "framework/nn/pool.h"
#include "framework/nn/sequential.h"
