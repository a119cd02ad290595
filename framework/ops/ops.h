// All differentiable operators. Include this from layers and models.
//
// brings in: elementwise.h (arithmetic, math, activations), shape.h (views, cast),
//            reduce.h (sum, mean, max, var), matmul.h (matmul, linear) and the op families
//            listed below as they are added.
#pragma once

#include "framework/autograd/engine.h"
#include "framework/autograd/grad_mode.h"
#include "framework/core/rng.h"
#include "framework/core/tensor.h"
#include "framework/ops/attention.h"
#include "framework/ops/batch_norm.h"
#include "framework/ops/conv.h"
#include "framework/ops/dropout.h"
#include "framework/ops/elementwise.h"
#include "framework/ops/index.h"
#include "framework/ops/loss.h"
#include "framework/ops/matmul.h"
#include "framework/ops/norm.h"
#include "framework/ops/pool.h"
#include "framework/ops/reduce.h"
#include "framework/ops/rope.h"
#include "framework/ops/shape.h"
#include "framework/ops/softmax.h"
