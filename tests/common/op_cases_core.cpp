// Op test table entries: views, reductions, matrix products.
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

TESSERA_OP_TEST(reshape){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4})}; },
                         .forward = [](const Inputs& x) { return mul(reshape(x[0], {4, -1}), reshape(x[0], {4, 6})); },
                         .second_order = true};
TESSERA_OP_TEST(permute){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4})}; },
                         .forward = [](const Inputs& x) { return permute(x[0], {2, 0, 1}).contiguous(); }};
TESSERA_OP_TEST(transpose_reshape){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 2})}; },
    .forward = [](const Inputs& x) { return reshape(transpose(x[0], 0, 1), {4, 6}); }};
TESSERA_OP_TEST(slice){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({5, 7})}; },
                       .forward = [](const Inputs& x) { return square(slice(x[0], 1, 1, -1, 2)); },
                       .second_order = true};
TESSERA_OP_TEST(expand){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 1})}; },
                        .forward = [](const Inputs& x) { return square(expand(x[0], {2, 3, 4})); },
                        .second_order = true};
TESSERA_OP_TEST(sum_all){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 5})}; },
                         .forward = [](const Inputs& x) { return sum(x[0]); }};
TESSERA_OP_TEST(sum_dims){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 5})}; },
                          .forward = [](const Inputs& x) { return sum(square(x[0]), {0, 2}); },
                          .second_order = true};
TESSERA_OP_TEST(sum_middle_keepdim){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 5})}; },
                                    .forward = [](const Inputs& x) { return sum(x[0], {1}, true); }};
TESSERA_OP_TEST(mean_dims){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 5})}; },
                           .forward = [](const Inputs& x) { return mean(x[0], {-1}); }};
TESSERA_OP_TEST(var){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 8})}; },
                     .forward = [](const Inputs& x) { return var(x[0], {1}); },
                     .second_order = true};
TESSERA_OP_TEST(matmul_2d){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.uniform({4, 5})}; },
                           .forward = [](const Inputs& x) { return matmul(x[0], x[1]); },
                           .second_order = true};
TESSERA_OP_TEST(matmul_batched_broadcast){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 1, 3, 4}), in.uniform({3, 4, 2})}; },
    .forward = [](const Inputs& x) { return matmul(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(matmul_transposed_operands){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 3}), in.uniform({5, 4})}; },
    .forward = [](const Inputs& x) { return matmul(transpose(x[0], 0, 1), transpose(x[1], 0, 1)); }};
TESSERA_OP_TEST(matmul_vector){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4}), in.uniform({4})}; },
                               .forward = [](const Inputs& x) { return matmul(x[0], x[1]); }};
TESSERA_OP_TEST(linear){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4}), in.uniform({5, 4}), in.uniform({5})}; },
    .forward = [](const Inputs& x) { return linear(x[0], x[1], x[2]); },
    .second_order = true};
// A tiny MLP critic: the shape of WGAN-GP's gradient penalty (second derivatives through
// linear and leaky_relu).
TESSERA_OP_TEST(mlp_second_order){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.uniform({6, 4}), in.uniform({6}), in.uniform({1, 6})}; },
    .forward = [](const Inputs& x) { return linear(leaky_relu(linear(x[0], x[1], x[2]), 0.2), x[3]); },
    .second_order = true};

}  // namespace
}  // namespace tessera::testing
