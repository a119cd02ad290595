// Op test table entries: rotary position embedding. The cos/sin tables are built inside the
// forward (they are constants, not inputs); rope is linear in x, and its backward is rope
// again, so second derivatives are checked too.
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;

// Tables for `seq` positions starting at `first`, on x's device.
RopeTables tables_for(const Tensor& x, int64_t first, double theta = 10000.0) {
  const RopeTables all = rope_tables(first + x.size(1), x.size(3), theta, x.device());
  return {all.cos.slice(0, first, first + x.size(1)), all.sin.slice(0, first, first + x.size(1))};
}

TESSERA_OP_TEST(rope){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 5, 3, 8})}; },
                      .forward = [](const Inputs& x) {
                        const RopeTables t = tables_for(x[0], 0);
                        return rope(x[0], t.cos, t.sin);
                      },
                      .second_order = true};
// A decoding chunk: positions 7..10 of the table, an odd number of pairs per row (scalar path).
TESSERA_OP_TEST(rope_offset_positions){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({1, 4, 2, 6})}; },
                                       .forward = [](const Inputs& x) {
                                         const RopeTables t = tables_for(x[0], 7, 100.0);
                                         return rope(x[0], t.cos, t.sin);
                                       }};
// q and k taken as strided views of a fused [batch, seq, 3 * heads * head_dim] projection.
TESSERA_OP_TEST(rope_strided_qkv_slice){
    .inputs = [](const InputMaker& in) { return Inputs{in.uniform({2, 6, 3 * 2 * 8})}; },
    .forward = [](const Inputs& x) {
      const Tensor k = x[0].slice(2, 16, 32).reshape({2, 6, 2, 8});
      const RopeTables t = tables_for(k, 0);
      return rope(k, t.cos, t.sin);
    }};
TESSERA_OP_TEST(rope_inverse){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({1, 3, 2, 16})}; },
                              .forward = [](const Inputs& x) {
                                const RopeTables t = tables_for(x[0], 2);
                                return rope(x[0], t.cos, t.sin, /*inverse=*/true);
                              }};

}  // namespace
}  // namespace tessera::testing
