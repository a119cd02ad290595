// Op test table entries: layer norm, RMS norm, softmax, log-softmax and the losses.
//
// The fused backward kernels are checked by gradcheck; entries with .second_order = true also
// check the composite backward that runs under create_graph.
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

// Class indices in [0, classes) with every third entry (1, 4, 7, ...) set to ignore_index:
// the same values on every device for the same seed.
Tensor targets_with_ignored(const InputMaker& in, const Shape& shape, int64_t classes, int64_t ignore_index) {
  std::vector<int64_t> values = in.indices(shape, classes).to(Device::cpu()).to_vector<int64_t>();
  for (size_t i = 1; i < values.size(); i += 3) values[i] = ignore_index;
  return Tensor::from_vector(values, shape, in.device);
}

TESSERA_OP_TEST(layer_norm_affine){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 6}), in.uniform({6}), in.uniform({6})}; },
    .forward = [](const Inputs& x) { return layer_norm(x[0], x[1], x[2]); },
    .second_order = true};
TESSERA_OP_TEST(layer_norm_no_affine){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 8})}; },
                                      .forward = [](const Inputs& x) { return layer_norm(x[0], Tensor(), Tensor()); },
                                      .second_order = true};
TESSERA_OP_TEST(layer_norm_weight_only){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({5, 4}), in.uniform({4})}; },
    .forward = [](const Inputs& x) { return layer_norm(x[0], x[1], Tensor(), 1e-3); }};
TESSERA_OP_TEST(rms_norm){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 6}), in.uniform({6})}; },
                          .forward = [](const Inputs& x) { return rms_norm(x[0], x[1]); },
                          .second_order = true};
TESSERA_OP_TEST(rms_norm_no_weight){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 2, 5})}; },
                                    .forward = [](const Inputs& x) { return rms_norm(x[0], Tensor()); }};
TESSERA_OP_TEST(softmax_last){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 7}, -3.0, 3.0)}; },
                              .forward = [](const Inputs& x) { return softmax(x[0], -1); },
                              .second_order = true};
TESSERA_OP_TEST(softmax_middle){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 5, 4}, -3.0, 3.0)}; },
                                .forward = [](const Inputs& x) { return softmax(x[0], 1); },
                                .second_order = true};
TESSERA_OP_TEST(log_softmax_last){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 7}, -3.0, 3.0)}; },
                                  .forward = [](const Inputs& x) { return log_softmax(x[0], -1); },
                                  .second_order = true};
TESSERA_OP_TEST(log_softmax_first){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({5, 3}, -3.0, 3.0)}; },
                                   .forward = [](const Inputs& x) { return log_softmax(x[0], 0); }};
TESSERA_OP_TEST(cross_entropy){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({6, 5}, -2.0, 2.0), in.indices({6}, 5)}; },
    .forward = [](const Inputs& x) { return cross_entropy(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(cross_entropy_ignore_index){
    .inputs = [](const InputMaker& in) {
      return Inputs{in.uniform({7, 4}, -2.0, 2.0), targets_with_ignored(in, {7}, 4, -100)};
    },
    .forward = [](const Inputs& x) { return cross_entropy(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(cross_entropy_label_smoothing){
    .inputs = [](const InputMaker& in) {
      return Inputs{in.uniform({2, 3, 6}, -2.0, 2.0), targets_with_ignored(in, {2, 3}, 6, 0)};
    },
    .forward = [](const Inputs& x) { return cross_entropy(x[0], x[1], /*ignore_index=*/0, 0.2); },
    .second_order = true};
TESSERA_OP_TEST(cross_entropy_sum){
    .inputs = [](const InputMaker& in) {
      return Inputs{in.uniform({5, 3}, -2.0, 2.0), targets_with_ignored(in, {5}, 3, -100)};
    },
    .forward = [](const Inputs& x) { return cross_entropy(x[0], x[1], -100, 0.1, Reduction::sum); }};
TESSERA_OP_TEST(cross_entropy_none){
    .inputs = [](const InputMaker& in) {
      return Inputs{in.uniform({2, 4, 5}, -2.0, 2.0), targets_with_ignored(in, {2, 4}, 5, -100)};
    },
    .forward = [](const Inputs& x) { return cross_entropy(x[0], x[1], -100, 0.0, Reduction::none); },
    .second_order = true};
TESSERA_OP_TEST(mse_loss){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.uniform({3, 4})}; },
                          .forward = [](const Inputs& x) { return mse_loss(x[0], x[1]); },
                          .second_order = true};
TESSERA_OP_TEST(mse_loss_none){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({5}), in.uniform({5})}; },
                               .forward = [](const Inputs& x) { return mse_loss(x[0], x[1], Reduction::none); }};
TESSERA_OP_TEST(l1_loss){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.uniform({3, 4})}; },
                         .forward = [](const Inputs& x) { return l1_loss(x[0], x[1], Reduction::sum); }};
TESSERA_OP_TEST(bce_with_logits){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 3}, -4.0, 4.0), in.uniform({4, 3}, 0.0, 1.0)}; },
    .forward = [](const Inputs& x) { return binary_cross_entropy_with_logits(x[0], x[1]); },
    .second_order = true};
TESSERA_OP_TEST(bce_with_logits_none){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({6}, -4.0, 4.0), in.uniform({6}, 0.0, 1.0)}; },
    .forward = [](const Inputs& x) { return binary_cross_entropy_with_logits(x[0], x[1], Reduction::none); }};

}  // namespace
}  // namespace tessera::testing
