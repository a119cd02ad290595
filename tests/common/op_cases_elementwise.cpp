// Op test table entries: elementwise arithmetic, math functions and activations.
#include "framework/ops/ops.h"
#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

using Inputs = std::vector<Tensor>;
auto one(Shape s) {
  return [s](const InputMaker& in) { return Inputs{in.uniform(s)}; };
}
auto one_positive(Shape s) {
  return [s](const InputMaker& in) { return Inputs{in.positive(s)}; };
}
auto two(Shape a, Shape b) {
  return [a, b](const InputMaker& in) { return Inputs{in.uniform(a), in.uniform(b)}; };
}

TESSERA_OP_TEST(add_broadcast){.inputs = two({3, 4, 5}, {4, 1}), .forward = [](const Inputs& x) { return add(x[0], x[1]); }};
TESSERA_OP_TEST(sub_broadcast){.inputs = two({2, 1, 5}, {3, 5}), .forward = [](const Inputs& x) { return sub(x[0], x[1]); }};
TESSERA_OP_TEST(mul_broadcast){.inputs = two({3, 4}, {4}), .forward = [](const Inputs& x) { return mul(x[0], x[1]); },
                                .second_order = true};
TESSERA_OP_TEST(div){.inputs = [](const InputMaker& in) { return Inputs{in.uniform({3, 4}), in.positive({3, 4})}; },
                     .forward = [](const Inputs& x) { return div(x[0], x[1]); }, .second_order = true};
TESSERA_OP_TEST(maximum){.inputs = two({6, 5}, {6, 5}), .forward = [](const Inputs& x) { return maximum(x[0], x[1]); }};
TESSERA_OP_TEST(minimum){.inputs = two({6, 5}, {5}), .forward = [](const Inputs& x) { return minimum(x[0], x[1]); }};
TESSERA_OP_TEST(scalar_arithmetic){.inputs = one({4, 3}),
                                   .forward = [](const Inputs& x) { return (2.0 - x[0] * 3.0) / 0.5 + 1.0; },
                                   .second_order = true};
TESSERA_OP_TEST(neg){.inputs = one({7}), .forward = [](const Inputs& x) { return neg(x[0]); }};
TESSERA_OP_TEST(exp){.inputs = one({3, 5}), .forward = [](const Inputs& x) { return exp(x[0]); }, .second_order = true};
TESSERA_OP_TEST(log){.inputs = one_positive({3, 5}), .forward = [](const Inputs& x) { return log(x[0]); },
                     .second_order = true};
TESSERA_OP_TEST(pow){.inputs = one_positive({3, 5}), .forward = [](const Inputs& x) { return pow(x[0], 2.5); },
                     .second_order = true};
TESSERA_OP_TEST(sqrt){.inputs = one_positive({4, 4}), .forward = [](const Inputs& x) { return sqrt(x[0]); },
                      .second_order = true};
TESSERA_OP_TEST(rsqrt){.inputs = one_positive({4, 4}), .forward = [](const Inputs& x) { return rsqrt(x[0]); },
                       .second_order = true};
TESSERA_OP_TEST(abs){.inputs = one({9}), .forward = [](const Inputs& x) { return abs(x[0]); }};
TESSERA_OP_TEST(square){.inputs = one({9}), .forward = [](const Inputs& x) { return square(x[0]); }, .second_order = true};
TESSERA_OP_TEST(reciprocal){.inputs = one_positive({9}), .forward = [](const Inputs& x) { return reciprocal(x[0]); },
                            .second_order = true};
TESSERA_OP_TEST(clamp){.inputs = one({5, 6}), .forward = [](const Inputs& x) { return clamp(x[0], -0.5, 0.3); }};
TESSERA_OP_TEST(tanh){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return tanh(x[0]); }, .second_order = true};
TESSERA_OP_TEST(sigmoid){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return sigmoid(x[0]); },
                         .second_order = true};
TESSERA_OP_TEST(relu){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return relu(x[0]); }, .second_order = true};
TESSERA_OP_TEST(leaky_relu){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return leaky_relu(x[0], 0.2); },
                            .second_order = true};
TESSERA_OP_TEST(gelu){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return gelu(x[0]); }, .second_order = true};
TESSERA_OP_TEST(silu){.inputs = one({3, 7}), .forward = [](const Inputs& x) { return silu(x[0]); }, .second_order = true};
// Activation of a product: the second derivative mixes f'' with the product rule.
TESSERA_OP_TEST(gelu_of_product){.inputs = two({4, 3}, {4, 3}),
                                 .forward = [](const Inputs& x) { return gelu(mul(x[0], x[1])); },
                                 .second_order = true};

}  // namespace
}  // namespace tessera::testing
