// Op test table entries: scaled_dot_product_attention (flash-attention kernels). Lengths are
// not multiples of the CPU tiles (kAttentionCpuTileRows/Cols = 32) so tails are exercised;
// first derivatives only (the backward kernels are not differentiable).
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

auto qkv(Shape q, Shape kv) {
  return [q, kv](const InputMaker& in) { return Inputs{in.uniform(q), in.uniform(kv), in.uniform(kv)}; };
}

TESSERA_OP_TEST(attention_full){.inputs = qkv({1, 2, 37, 8}, {1, 2, 45, 8}),
                                .forward = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], false); }};
TESSERA_OP_TEST(attention_causal){
    .inputs = qkv({2, 1, 35, 4}, {2, 1, 35, 4}),
    .forward = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true, 0.7); }};
// Decoding shape: fewer queries than keys, bottom-right causal alignment.
TESSERA_OP_TEST(attention_causal_short_query){
    .inputs = qkv({1, 2, 19, 8}, {1, 2, 45, 8}),
    .forward = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }};
// Grouped-query attention: four query heads share two kv heads.
TESSERA_OP_TEST(attention_grouped_query){
    .inputs = qkv({1, 4, 21, 8}, {1, 2, 33, 8}),
    .forward = [](const Inputs& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); }};
// Operands given as permuted views of [batch, len, heads, head_dim].
TESSERA_OP_TEST(attention_strided_operands){
    .inputs = qkv({1, 13, 2, 8}, {1, 40, 2, 8}),
    .forward = [](const Inputs& x) {
      return scaled_dot_product_attention(permute(x[0], {0, 2, 1, 3}), permute(x[1], {0, 2, 1, 3}),
                                          permute(x[2], {0, 2, 1, 3}), false);
    }};

}  // namespace
}  // namespace tessera::testing
