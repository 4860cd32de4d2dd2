// The pipeline values `gatehouse run` takes as flags (--param NAME=VALUE,
// --pipeline-id, --node-index), checked alike by the front end (to say
// what is wrong before anything starts) and by the broker (which trusts
// nothing its caller checked). Header-only: the broker links no parser.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "policy/job.hpp"

namespace gh::job {

inline constexpr size_t kMaxParamNameBytes = 128;
inline constexpr size_t kMaxParamValueBytes = 4096;
// Names and values together: they travel in the parse request, whose bound
// leaves this much room (ipc/parse_messages.hpp).
inline constexpr size_t kMaxParamTotalBytes = 64 * 1024;
inline constexpr size_t kMaxPipelineIdBytes = 64;

// "" or why `name` cannot name a pipeline parameter: as CircleCI's, a
// letter, then letters, digits, `_` and `-`.
inline std::string param_name_problem(std::string_view name) {
  auto letter = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  if (name.empty() || name.size() > kMaxParamNameBytes || !letter(name[0]))
    return "a parameter name starts with a letter and has 1 to " + std::to_string(kMaxParamNameBytes) + " characters";
  for (char c : name)
    if (!letter(c) && !(c >= '0' && c <= '9') && c != '_' && c != '-')
      return "a parameter name has only letters, digits, `_` and `-`";
  return {};
}

// Adds `flag` (NAME=VALUE) to `to`, or says what is wrong with it.
inline std::string add_param(const std::string& flag, EnvList& to) {
  const size_t eq = flag.find('=');
  if (eq == std::string::npos) return "--param " + flag.substr(0, 64) + ": write it as NAME=VALUE";
  const std::string name = flag.substr(0, eq), value = flag.substr(eq + 1);
  if (auto why = param_name_problem(name); !why.empty()) return "--param " + name.substr(0, 64) + ": " + why;
  if (value.size() > kMaxParamValueBytes || value.find('\0') != std::string::npos)
    return "--param " + name + ": the value is over " + std::to_string(kMaxParamValueBytes) + " bytes";
  size_t total = flag.size();
  for (const auto& [k, v] : to) {
    if (k == name) return "--param " + name + " is given twice";
    total += k.size() + v.size() + 1;
  }
  if (to.size() >= kMaxPipelineParameters || total > kMaxParamTotalBytes)
    return "too many --param values: at most " + std::to_string(kMaxPipelineParameters) + ", " +
           std::to_string(kMaxParamTotalBytes / 1024) + " KiB in all";
  to.emplace_back(name, value);
  return {};
}

// "" or why `id` is not a pipeline id (a UUID on CircleCI: letters, digits, `-`).
inline std::string pipeline_id_problem(std::string_view id) {
  if (id.size() > kMaxPipelineIdBytes) return "--pipeline-id is over " + std::to_string(kMaxPipelineIdBytes) + " bytes";
  for (char c : id)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-'))
      return "--pipeline-id has only letters, digits and `-` (a UUID)";
  return {};
}

}  // namespace gh::job
