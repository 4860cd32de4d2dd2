// The machine a job asks for (CircleCI's `machine: image:` and
// `resource_class`) against the machine it would run on: this host, and the
// profile's `machine` section.
//
// A CircleCI name says something about the machine behind it: `arm.large`
// is an aarch64 VM, `large` an x86_64 one, `windows-server-2022-gui:current`
// a Windows image. A job that names another OS or architecture than this
// host's would run, and perhaps pass, on the wrong machine, so it is refused
// whatever the policy says (no key of a policy can change what the host
// is). A name that implies nothing (`acme/linux`, a self-hosted runner
// class; an image the table does not know) is left to the profile's lists.
// docs/policy.md has the table; keep the two in step.
//
// Root links this (the broker decides admission with it): no YAML, no
// parsing beyond comparing names.
#pragma once

#include <string>
#include <string_view>

#include "common/diagnostics.hpp"
#include "policy/job.hpp"
#include "policy/profile.hpp"

namespace gh::policy {

enum class MachineOs { Any, Linux, Windows, MacOs };

// What a name implies about its machine; Any / "" where it implies nothing.
struct MachinePlatform {
  MachineOs os = MachineOs::Any;
  std::string_view arch;    // "x86_64", "aarch64", or "" (either)
  std::string_view source;  // how the table knows, for messages: "CircleCI's arm.* classes"
  bool self_hosted = false; // a `namespace/name` runner class: the runner's own machine
};

MachinePlatform resource_class_platform(std::string_view resource_class);
MachinePlatform image_platform(std::string_view image);
const char* os_name(MachineOs os);  // "Linux", "Windows", "macOS", "any OS"

// `uname -m` as the table spells it: arm64 is aarch64, amd64 is x86_64;
// anything else unchanged.
std::string normalize_arch(std::string_view uname_machine);
// This host's architecture, from uname(2), normalised; "" if uname fails.
std::string host_arch();

struct MachineCheck {
  bool host_mismatch = false;   // another OS or architecture: no policy can let it run here
  bool policy_refused = false;  // this host could, but the profile does not list it
  std::string reason;           // one line for the audit record; "" when admitted
  bool admitted() const { return !host_mismatch && !policy_refused; }
};

// Checks the job's image and resource class (either may be empty: not
// named, nothing to check) against a Linux host of architecture
// `host_arch` and profile `p`. Each problem is an error in `d` (which
// should hold the job's file name and text) at the value's mark, naming the
// host's OS or architecture, or the profile and the policy line that would
// have to change. `policy_file` is the policy's path as the operator gave
// it, "" for the built-in policy.
MachineCheck check_machine(const job::Job& j, const Profile& p, std::string_view host_arch,
                           const std::string& policy_file, Diagnostics& d);

}  // namespace gh::policy
