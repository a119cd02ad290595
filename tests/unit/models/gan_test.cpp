// DcganGenerator / DcganCritic and the CNN classifier: shapes, PyTorch-style parameter names,
// the critic's normalisation variants, DCGAN initialisation, option checks and their JSON form.
#include <gtest/gtest.h>

#include <cmath>

#include "framework/core/error.h"
#include "framework/models/classifier.h"
#include "framework/models/gan.h"
#include "framework/ops/ops.h"

namespace tessera::models {
namespace {

std::vector<std::string> names_and_shapes(const nn::Module& m, bool buffers = false) {
  std::vector<std::string> out;
  for (const auto& [name, t] : buffers ? m.named_buffers() : m.named_parameters())
    out.push_back(name + shape_str(t.shape()));
  return out;
}

GanOptions small(const std::string& d_norm = "batch") {
  GanOptions o;
  o.latent = 16;
  o.g_width = 8;
  o.d_width = 4;
  o.d_norm = d_norm;
  o.d_groups = 4;
  return o;
}

TEST(DcganGeneratorTest, NoiseToImagesInTanhRange) {
  DcganGenerator g(small());
  const Tensor images = g(randn({3, 16}));
  EXPECT_EQ(images.shape(), (Shape{3, 1, 28, 28}));
  EXPECT_EQ(g(randn({2, 16, 1, 1})).shape(), (Shape{2, 1, 28, 28}));
  for (float v : images.to_vector<float>()) EXPECT_TRUE(v > -1.0f && v < 1.0f) << v;
}

TEST(DcganGeneratorTest, ParameterAndBufferNamesMatchPyTorchSequential) {
  DcganGenerator g(small());
  EXPECT_EQ(names_and_shapes(g),
            (std::vector<std::string>{"net.0.weight[16, 16, 7, 7]", "net.1.weight[16]", "net.1.bias[16]",
                                      "net.3.weight[16, 8, 4, 4]", "net.4.weight[8]", "net.4.bias[8]",
                                      "net.6.weight[8, 1, 4, 4]", "net.6.bias[1]"}));
  EXPECT_EQ(names_and_shapes(g, true),
            (std::vector<std::string>{"net.1.running_mean[16]", "net.1.running_var[16]",
                                      "net.1.num_batches_tracked[]", "net.4.running_mean[8]", "net.4.running_var[8]",
                                      "net.4.num_batches_tracked[]"}));
}

TEST(DcganGeneratorTest, WrongNoiseShapeNamesIt) {
  DcganGenerator g(small());
  try {
    g(randn({2, 15}));
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("expected z [B, 16] or [B, 16, 1, 1], got [2, 15]"), std::string::npos)
        << e.what();
  }
}

TEST(DcganCriticTest, ImagesToOneScoreEach) {
  for (const char* norm : {"batch", "group", "none"}) {
    DcganCritic d(small(norm));
    EXPECT_EQ(d(randn({5, 1, 28, 28})).shape(), (Shape{5}));
  }
}

TEST(DcganCriticTest, NormalisationDecidesTheLayers) {
  EXPECT_EQ(names_and_shapes(DcganCritic(small("batch"))),
            (std::vector<std::string>{"net.0.weight[4, 1, 4, 4]", "net.0.bias[4]", "net.2.weight[8, 4, 4, 4]",
                                      "net.3.weight[8]", "net.3.bias[8]", "net.5.weight[1, 8, 7, 7]",
                                      "net.5.bias[1]"}));
  EXPECT_EQ(names_and_shapes(DcganCritic(small("none"))),
            (std::vector<std::string>{"net.0.weight[4, 1, 4, 4]", "net.0.bias[4]", "net.2.weight[8, 4, 4, 4]",
                                      "net.2.bias[8]", "net.4.weight[1, 8, 7, 7]", "net.4.bias[1]"}));
  EXPECT_TRUE(DcganCritic(small("none")).named_buffers().empty());
  EXPECT_EQ(names_and_shapes(DcganCritic(small("group")))[3], "net.3.weight[8]");
}

TEST(DcganCriticTest, ScoresOfOneImageDoNotDependOnTheBatchWithoutBatchNorm) {
  Generator gen(5);
  DcganCritic d(small("none"), &gen);
  const Tensor x = randn({4, 1, 28, 28}, 0.0, 1.0, DType::f32, Device::cpu(), &gen);
  const float alone = d(x.slice(0, 0, 1)).item();
  EXPECT_FLOAT_EQ(d(x).to_vector<float>()[0], alone);
}

TEST(GanOptionsTest, DcganInitDrawsSmallWeights) {
  Generator gen(1);
  DcganCritic d(small("none"), &gen);
  const std::vector<float> w = d.named_parameters()[0].second.to_vector<float>();
  double sq = 0;
  for (float v : w) sq += v * v;
  EXPECT_NEAR(std::sqrt(sq / w.size()), 0.02, 0.008);
  for (float v : d.named_parameters()[1].second.to_vector<float>()) EXPECT_EQ(v, 0.0f);
}

TEST(GanOptionsTest, BadValuesNameTheConfigKey) {
  GanOptions o = small("group");
  o.d_groups = 3;
  EXPECT_THROW(
      {
        try {
          o.validate();
        } catch (const Error& e) {
          EXPECT_NE(std::string(e.what()).find("`model.d_groups`=3 must divide"), std::string::npos) << e.what();
          throw;
        }
      },
      Error);
  o = small("layer");
  EXPECT_THROW(o.validate(), Error);
}

TEST(GanOptionsTest, JsonRoundTripAndIncompleteDescription) {
  const GanOptions o = small("group");
  const GanOptions back = GanOptions::from_json(o.to_json(), "state.json");
  EXPECT_EQ(back.to_json(), o.to_json());
  nlohmann::json j = o.to_json();
  j.erase("latent");
  try {
    GanOptions::from_json(j, "run/state.json");
    FAIL() << "expected an error";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("run/state.json: the GAN model description is incomplete"),
              std::string::npos)
        << e.what();
  }
}

TEST(CnnClassifierTest, LogitsFeaturesAndNames) {
  CnnClassifierOptions o;
  o.channels = {4, 8};
  o.hidden = 16;
  CnnClassifier model(o);
  const Tensor x = randn({3, 1, 28, 28});
  EXPECT_EQ(model(x).shape(), (Shape{3, 10}));
  EXPECT_EQ(model.features(x).shape(), (Shape{3, 16}));
  EXPECT_EQ(names_and_shapes(model),
            (std::vector<std::string>{"body.0.weight[4, 1, 3, 3]", "body.1.weight[4]", "body.1.bias[4]",
                                      "body.4.weight[8, 4, 3, 3]", "body.5.weight[8]", "body.5.bias[8]",
                                      "body.9.weight[16, 392]", "body.9.bias[16]", "head.weight[10, 16]",
                                      "head.bias[10]"}));
  for (float v : model.features(x).to_vector<float>()) EXPECT_GE(v, 0.0f);  // after ReLU
}

TEST(CnnClassifierTest, OptionsCheckedAndRoundTrip) {
  CnnClassifierOptions o;
  o.channels = {4, 8, 16};  // 28 -> 14 -> 7 -> cannot halve 7
  EXPECT_THROW(o.validate(), Error);
  o.channels = {4};
  EXPECT_EQ(CnnClassifierOptions::from_json(o.to_json(), "x").to_json(), o.to_json());
  nlohmann::json mlp = {{"kind", "mlp"}};
  EXPECT_THROW(CnnClassifierOptions::from_json(mlp, "x"), Error);
}

}  // namespace
}  // namespace tessera::models
