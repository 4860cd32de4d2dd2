// The local orb folder (docs/jobs.md, "Orbs"): this runner never fetches
// orbs from the network; an operator puts packed orbs (`circleci orb pack`)
// in a folder as DIR/<namespace>/<name>@<version>.yml. The job names an orb
// as `namespace/name@version`, where the version may be partial (`5`,
// `5.1`) or `volatile`, as on CircleCI: the highest version the folder holds
// that matches is taken. A development version (`@dev:alpha`) is the file
// of exactly that name, `NAME@dev:alpha.yml`.
//
// The names come from the job file (through the parse child): they are
// checked here, before any path is made from them.
#pragma once

#include <cstddef>
#include <optional>
#include <string>

#include "common/result.hpp"

namespace gh {

inline constexpr const char* kDefaultOrbDirectory = "/etc/gatehouse/orbs";

// `ns/name@version`: lower-case names of letters, digits, `-` and `_` (at
// most 64 bytes each), a version of 1 to 3 numbers, `volatile`, or
// `dev:LABEL` (a label of those characters and dots, not starting with one).
bool valid_orb_ref(const std::string& ref);

// The file in dir that serves ref, or nullopt when there is none. Errors:
// ref not valid, or dir unreadable for another reason than not existing.
Result<std::optional<std::string>> find_orb_file(const std::string& dir, const std::string& ref);

}  // namespace gh
