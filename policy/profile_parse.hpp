// Internal to the policy parser: what policy_parse.cpp (the file, rules,
// `extends`) needs from profile_parse.cpp (one profile's sections).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/yaml_util.hpp"
#include "policy/profile.hpp"

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

// 1-64 of [A-Za-z0-9_.-]: profile names and signer key names.
bool valid_profile_name(const std::string& s);

// A single-line string that is an absolute path in normal form, else an error at n.
std::optional<std::string> abs_path(const YAML::Node& n, const std::string& what, Diagnostics& d, Mark if_null);

// profile_values.cpp: value checks. The *_problem functions return what is
// wrong in words ("has a `..` component"), empty when the value is fine.
std::string path_problem(const std::string& p);  // absolute, normal form
// The protected host directory p is, is inside of, or holds ("" if none):
// such a path may never be writable by jobs.
std::string_view touches_protected(const std::string& p);
bool valid_env_name(const std::string& s);
bool valid_user_name(const std::string& s);
bool valid_secret_name(const std::string& s);
std::string port_problem(std::string_view p, bool star_ok);
std::string host_problem(std::string_view h);
std::string host_port_problem(const std::string& s);  // network.allow entries
std::string glob_problem(const std::string& s);

}  // namespace gh::policy::detail
