// Whether one glob pattern matches every string another matches, for
// `policy diff` (docs/policy.md, "Comparing policies"). The patterns are the
// ones the policy's image and machine lists take (policy::glob_match and
// docker's image globs): `*` any run without `/`, `**` any run, `?` one
// character other than `/`; every other character is itself.
//
// The answer is sound, not complete: `true` means every string `inner`
// matches, `outer` matches too; `false` means that could not be shown (the
// diff then says "changed, not provably narrower" and counts it as widened).
#pragma once

#include <string>
#include <vector>

namespace gh::policy {

bool glob_covers(const std::string& outer, const std::string& inner);

// Every pattern of `inner` is covered by some pattern of `outer`.
bool globs_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner);

}  // namespace gh::policy
