// Internal to the policy parser: what policy_parse.cpp (the file, rules,
// `extends`) needs from profile_parse.cpp (one profile's sections).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/yaml_util.hpp"
#include "policy/profile.hpp"
#include "policy/values.hpp"

namespace gh::policy::detail {

// Applies the keys one profile writes (`body`, its mapping's entries) onto
// `base`: the built-in profile or the resolved parent named `parent` ("" for
// the built-in). Keys override one by one; lists and `environment.set`
// replace; `secrets` replaces. Writing a mode (network, docker, filesystem
// root, root_in_namespace) resets the fields that depend on it unless the
// profile writes them too. Combinations are then checked on the result;
// errors point at this profile's keys, never at inherited ones. `extends`
// is skipped here (the caller resolves it).
void apply_profile(const std::vector<yaml::Entry>& body, const std::string& parent, Profile& base, Diagnostics& d);

// A single-line string that is an absolute path in normal form, else an error at n.
std::optional<std::string> abs_path(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null);

}  // namespace gh::policy::detail
