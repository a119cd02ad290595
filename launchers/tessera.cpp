// The `tessera` program: one binary, one subcommand per verb (launchers/commands/*.cpp).
//
//   tessera --help
//   tessera train --config examples/classifier/fmnist_mlp.toml --out runs/mlp
//
// Errors in user input (flags, config, data files) print one clear message and exit non-zero.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include "framework/core/error.h"
#include "launchers/command.h"

namespace tessera::cli {
std::vector<Command>& commands() {
  static std::vector<Command> all;
  return all;
}
}  // namespace tessera::cli

int main(int argc, char** argv) {
  CLI::App app{
      "Tessera: distributed training and serving of GANs, VQGANs and multi-token-prediction transformers.\n"
      "Run `tessera <verb> --help` for the flags of a verb.",
      "tessera"};
  app.require_subcommand(1);
  app.set_help_all_flag("--help-all", "Describe every verb and its flags");
  auto& verbs = tessera::cli::commands();
  std::sort(verbs.begin(), verbs.end(), [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const auto& verb : verbs) verb.setup(*app.add_subcommand(verb.name, verb.description));
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  } catch (const tessera::Error& e) {
    std::fflush(stdout);
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  } catch (const std::exception& e) {
    std::fflush(stdout);
    std::cerr << "error: " << e.what() << std::endl;
    return 1;
  }
  return 0;
}
