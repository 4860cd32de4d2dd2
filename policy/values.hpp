// The policy's value checks (profile_values.cpp): what the parser applies
// to each field, and what the broker applies again to the parse child's
// typed answer (ipc/policy_codec.cpp). No YAML here: the broker links this
// and no parser.
#pragma once

#include <string>
#include <string_view>

namespace gh::policy::detail {

// 1-64 of [A-Za-z0-9_.-]: profile names and signer key names.
bool valid_profile_name(const std::string& s);

// The *_problem functions return what is
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
// machine.images and machine.resource_classes entries: 1 to 128 of
// A-Z a-z 0-9 . _ - + : / and the glob characters * ?
std::string machine_pattern_problem(const std::string& s);

}  // namespace gh::policy::detail
