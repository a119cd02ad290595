// Op test table entries: index, shape and selection ops, max/argmax, dropout.
//
// Linear ops are wrapped in a square or a product where the entry asks for second derivatives,
// so gradgradcheck exercises the backward of the backward (index_add <-> index_select,
// scatter_add <-> gather, cat <-> slice). Index inputs come from InputMaker::indices and stay
// integer, so they take no part in the gradient checks.
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

TESSERA_OP_TEST(cat_middle_dim){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 3, 4}), in.uniform({2, 1, 4}), in.uniform({2, 2, 4})}; },
    .forward = [](const Inputs& x) { return square(cat({x[0], x[1], x[2]}, 1)); },
    .second_order = true};
TESSERA_OP_TEST(cat_last_dim_transposed_input){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 2}), in.uniform({2, 3})}; },
    .forward = [](const Inputs& x) { return cat({x[0], transpose(x[1], 0, 1)}, -1); }};
TESSERA_OP_TEST(stack){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.uniform({3, 4})}; },
    .forward = [](const Inputs& x) { return mul(stack({x[0], x[1]}, 1), stack({x[1], x[0]}, 1)); },
    .second_order = true};
TESSERA_OP_TEST(split_sizes){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 7})}; },
    .forward = [](const Inputs& x) {
      const auto pieces = split(x[0], {3, 3, 1}, 1);
      return add(mul(pieces[0], pieces[1]), pieces[2]);
    },
    .second_order = true};
TESSERA_OP_TEST(split_chunks_one_unused){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({5, 2, 3})}; },
    .forward = [](const Inputs& x) {
      const auto pieces = split(x[0], 2, 0);  // sizes 2, 2, 1; the last piece is not used
      return mul(pieces[0], pieces[1]);
    },
    .second_order = true};
TESSERA_OP_TEST(index_select){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 5, 3}), in.indices({7}, 5)}; },
    .forward = [](const Inputs& x) { return square(index_select(x[0], 1, x[1])); },
    .second_order = true};
TESSERA_OP_TEST(index_add){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 5}), in.indices({8}, 4), in.uniform({8, 5})}; },
    .forward = [](const Inputs& x) { return mul(index_add(x[0], 0, x[1], x[2]), x[0]); },
    .second_order = true};
TESSERA_OP_TEST(gather){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 5}), in.indices({3, 6, 4}, 4)}; },
    .forward = [](const Inputs& x) { return square(gather(x[0], 1, x[1])); },
    .second_order = true};
TESSERA_OP_TEST(scatter_add){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4, 5}), in.indices({3, 6, 5}, 4), in.uniform({3, 6, 5})}; },
    .forward = [](const Inputs& x) { return square(scatter_add(x[0], 1, x[1], x[2])); },
    .second_order = true};
TESSERA_OP_TEST(embedding){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({5, 4}), in.indices({2, 6}, 5)}; },
    .forward = [](const Inputs& x) { return square(embedding(x[0], x[1])); },
    .second_order = true};
TESSERA_OP_TEST(max_dim){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 6, 4})}; },
    .forward = [](const Inputs& x) { return square(max(x[0], 1)); },
    .second_order = true};
TESSERA_OP_TEST(max_dim_keepdim){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 5})}; },
    .forward = [](const Inputs& x) { return max(x[0], -1, true); }};
TESSERA_OP_TEST(max_all){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 5})}; },
    .forward = [](const Inputs& x) { return square(max(x[0])); },
    .second_order = true};
TESSERA_OP_TEST(argmax){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({4, 7})}; },
    .forward = [](const Inputs& x) { return argmax(x[0], 1).to(x[0].dtype()); },
    .gradcheck = false};
TESSERA_OP_TEST(eq){
    .inputs = [](const InputMaker& in) { return Inputs{in.indices({4, 5}, 3), in.indices({5}, 3)}; },
    .forward = [](const Inputs& x) { return eq(x[0], x[1]); },
    .gradcheck = false};
TESSERA_OP_TEST(where_broadcast){
    .inputs = [](const InputMaker& in) { return Inputs{in.indices({3, 4}, 2), in.uniform({3, 4}), in.uniform({4})}; },
    .forward = [](const Inputs& x) { return square(where(x[0], x[1], x[2])); },
    .second_order = true};
// A fixed generator inside the forward: every call (gradcheck calls it many times) draws the
// same mask.
TESSERA_OP_TEST(dropout){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({6, 7})}; },
    .forward = [](const Inputs& x) {
      Generator gen(1234);
      return square(dropout(x[0], 0.3, /*training=*/true, &gen));
    },
    .second_order = true};

}  // namespace
}  // namespace tessera::testing
