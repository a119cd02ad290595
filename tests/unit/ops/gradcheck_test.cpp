// Every entry of the op test table (tests/common/op_cases_*.cpp) against float64 central
// differences: first derivatives always, second derivatives where the entry asks for them.
#include <gtest/gtest.h>

#include "tests/common/op_table.h"

namespace tessera::testing {
namespace {

std::vector<OpTestCase> cases_where(bool OpTestCase::*flag) {
  std::vector<OpTestCase> out;
  for (const OpTestCase& c : op_test_table())
    if (c.*flag) out.push_back(c);
  return out;
}

std::string case_name(const ::testing::TestParamInfo<OpTestCase>& info) { return info.param.name; }

class GradcheckTest : public ::testing::TestWithParam<OpTestCase> {};
class GradGradcheckTest : public ::testing::TestWithParam<OpTestCase> {};

TEST_P(GradcheckTest, FirstDerivativesMatchFiniteDifferences) {
  const OpTestCase& c = GetParam();
  for (uint64_t seed : {11u, 12u}) EXPECT_EQ(gradcheck(c, seed), "") << c.name << " seed " << seed;
}

TEST_P(GradGradcheckTest, SecondDerivativesMatchFiniteDifferences) {
  const OpTestCase& c = GetParam();
  EXPECT_EQ(gradgradcheck(c, 21), "") << c.name;
}

TEST_P(GradGradcheckTest, CreateGraphGradientsEqualPlainGradients) {
  const OpTestCase& c = GetParam();
  EXPECT_EQ(create_graph_matches_plain_backward(c, 31), "") << c.name;
}

INSTANTIATE_TEST_SUITE_P(Ops, GradcheckTest, ::testing::ValuesIn(cases_where(&OpTestCase::gradcheck)), case_name);
INSTANTIATE_TEST_SUITE_P(Ops, GradGradcheckTest, ::testing::ValuesIn(cases_where(&OpTestCase::second_order)),
                         case_name);

}  // namespace
}  // namespace tessera::testing
