// Op test table entries: convolutions, pooling, upsampling, batch norm (also synchronised over
// simulated replicas) and group norm.
//
// Shapes are tiny so float64 finite differences stay fast. The convolution entries check
// second derivatives too: conv2d's backward is conv_transpose2d and conv2d_weight_grad, whose
// backwards are convolutions again (WGAN-GP differentiates a convolutional critic twice).
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

TESSERA_OP_TEST(conv2d_bias){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 5, 5}), in.uniform({4, 3, 3, 3}), in.uniform({4})}; },
    .forward = [](const Inputs& x) { return conv2d(x[0], x[1], x[2], {.padding = 1}); },
    .second_order = true};
TESSERA_OP_TEST(conv2d_stride2_pad1){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 2, 6, 6}), in.uniform({3, 2, 4, 4})}; },
    .forward = [](const Inputs& x) { return conv2d(x[0], x[1], Tensor(), {.stride = 2, .padding = 1}); },
    .second_order = true};
TESSERA_OP_TEST(conv2d_dilation_groups){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 4, 6, 5}), in.uniform({6, 2, 2, 3}), in.uniform({6})}; },
    .forward = [](const Inputs& x) {
      return conv2d(x[0], x[1], x[2], {.stride = Size2(1, 2), .padding = Size2(1, 0), .dilation = Size2(2, 1), .groups = 2});
    },
    .second_order = true};
TESSERA_OP_TEST(conv2d_pointwise){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 3, 4}), in.uniform({5, 3, 1, 1})}; },
    .forward = [](const Inputs& x) { return conv2d(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(conv2d_weight_grad){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 2, 5, 5}), in.uniform({2, 3, 3, 3})}; },
    .forward = [](const Inputs& x) { return conv2d_weight_grad(x[0], x[1], {3, 2, 3, 3}, {.stride = 2, .padding = 1}); },
    .second_order = true};
TESSERA_OP_TEST(conv_transpose2d_stride2){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 3, 3}), in.uniform({3, 2, 4, 4}), in.uniform({2})}; },
    .forward = [](const Inputs& x) { return conv_transpose2d(x[0], x[1], x[2], {.stride = 2, .padding = 1}); },
    .second_order = true};
TESSERA_OP_TEST(conv_transpose2d_output_padding){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({1, 2, 3, 4}), in.uniform({2, 3, 3, 3})}; },
    .forward = [](const Inputs& x) {
      return conv_transpose2d(x[0], x[1], Tensor(), {.stride = 2, .padding = 1, .output_padding = 1});
    },
    .second_order = true};
// DCGAN's first generator layer: a 1x1 latent image to a kh x kw map (one GEMM).
TESSERA_OP_TEST(conv_transpose2d_from_1x1){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 1, 1}), in.uniform({4, 2, 3, 3})}; },
    .forward = [](const Inputs& x) { return conv_transpose2d(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(conv_transpose2d_groups_dilation){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 4, 3, 3}), in.uniform({4, 1, 2, 3})}; },
    .forward = [](const Inputs& x) {
      return conv_transpose2d(x[0], x[1], Tensor(), {.stride = 2, .dilation = Size2(2, 1), .groups = 2});
    }};
// A tiny convolutional critic: the shape of WGAN-GP's gradient penalty.
TESSERA_OP_TEST(conv_critic_second_order){
    .inputs = [](const InputMaker& in) {
      return Inputs{in.uniform({2, 1, 6, 6}), in.uniform({3, 1, 4, 4}), in.uniform({3}), in.uniform({1, 3, 3, 3})};
    },
    .forward = [](const Inputs& x) {
      return conv2d(leaky_relu(conv2d(x[0], x[1], x[2], {.stride = 2, .padding = 1}), 0.2), x[3]);
    },
    .second_order = true};
TESSERA_OP_TEST(avg_pool2d){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4, 6})}; },
                            .forward = [](const Inputs& x) { return square(avg_pool2d(x[0], 2)); },
                            .second_order = true};
TESSERA_OP_TEST(avg_pool2d_stride_padding){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({1, 2, 5, 6})}; },
    .forward = [](const Inputs& x) { return avg_pool2d(x[0], 3, 2, Size2(1, 0)); }};
TESSERA_OP_TEST(upsample_nearest2d){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 2, 3, 2})}; },
                                    .forward = [](const Inputs& x) { return square(upsample_nearest2d(x[0], 2)); },
                                    .second_order = true};
TESSERA_OP_TEST(batch_norm_train){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 3, 2, 3}), in.uniform({3}), in.uniform({3})}; },
    .forward = [](const Inputs& x) {
      const Tensor running_mean = Tensor::zeros({3}, DType::f32, x[0].device());
      const Tensor running_var = Tensor::ones({3}, DType::f32, x[0].device());
      return batch_norm(x[0], x[1], x[2], running_mean, running_var, /*training=*/true);
    },
    .second_order = true};
TESSERA_OP_TEST(batch_norm_train_no_affine_2d){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({6, 4})}; },
    .forward = [](const Inputs& x) { return batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), true, 0.1, 1e-3); },
    .second_order = true};
TESSERA_OP_TEST(batch_norm_eval){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 3, 2, 2}), in.uniform({3}), in.uniform({3})}; },
    .forward = [](const Inputs& x) {
      const Tensor running_mean = Tensor::from_vector(std::vector<double>{0.1, -0.2, 0.3}, {3}, x[0].dtype(), x[0].device());
      const Tensor running_var = Tensor::from_vector(std::vector<double>{0.5, 1.5, 2.0}, {3}, x[0].dtype(), x[0].device());
      return batch_norm(x[0], x[1], x[2], running_mean, running_var, /*training=*/false);
    },
    .second_order = true};
// sync_batch_norm's replica sum stands for the collective: returning its argument is one
// replica, doubling it is two replicas holding the same batch (the backward doubles too).
TESSERA_OP_TEST(sync_batch_norm_one_replica){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 3, 2, 3}), in.uniform({3}), in.uniform({3})}; },
    .forward = [](const Inputs& x) {
      return sync_batch_norm(x[0], x[1], x[2], Tensor(), Tensor(), 0.1, 1e-5, Tensor(),
                             [](const Tensor& t) { return t; });
    },
    .second_order = true};
TESSERA_OP_TEST(sync_batch_norm_two_replicas_no_affine){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 3})}; },
    .forward = [](const Inputs& x) {
      return sync_batch_norm(x[0], Tensor(), Tensor(), Tensor(), Tensor(), 0.1, 1e-3, Tensor(),
                             [](const Tensor& t) { return t * 2.0; });
    },
    .second_order = true};
TESSERA_OP_TEST(group_norm){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 6, 2, 2}), in.uniform({6}), in.uniform({6})}; },
    .forward = [](const Inputs& x) { return group_norm(x[0], 3, x[1], x[2]); },
    .second_order = true};

}  // namespace
}  // namespace tessera::testing
