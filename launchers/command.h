// Subcommands of the `tessera` program register themselves here.
//
// defines: tessera::cli::Command, register_command, commands, TESSERA_COMMAND
//
// Each verb lives in launchers/commands/<verb>.cpp and registers a setup function that adds
// its CLI11 subcommand (flags, help text and callback) to the program:
//
//   TESSERA_COMMAND(generate, "Generate text from a checkpoint", [](CLI::App& app) {
//     auto* opts = ...; app.add_option("--checkpoint", ...)->required();
//     app.callback([opts] { run_generate(*opts); });
//   });
//
// Callbacks throw tessera::Error on bad input; main prints it and exits with status 2
// (usage) or 1 (runtime failure).
#pragma once

#include <CLI/CLI.hpp>

#include <functional>
#include <string>
#include <vector>

namespace tessera::cli {

struct Command {
  std::string name;
  std::string description;
  std::function<void(CLI::App&)> setup;
};

std::vector<Command>& commands();

struct CommandRegistrar {
  explicit CommandRegistrar(Command c) { commands().push_back(std::move(c)); }
};

}  // namespace tessera::cli

#define TESSERA_COMMAND(verb, description, setup) \
  static ::tessera::cli::CommandRegistrar tessera_command_##verb(::tessera::cli::Command{#verb, description, setup})
