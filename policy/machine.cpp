// The machine a job asks for, against this host and the profile
// (machine.hpp). The tables follow CircleCI's documentation of its
// execution environments (Linux VM, Arm VM, GPU, Windows, macOS, Android).
#include "policy/machine.hpp"

#include <sys/utsname.h>

#include <algorithm>
#include <array>
#include <string>
#include <vector>

#include "policy/policy.hpp"
#include "policy/tools_text.hpp"

namespace gh::policy {

namespace {

bool starts_with(std::string_view s, std::string_view prefix) { return s.substr(0, prefix.size()) == prefix; }

// CircleCI's plain sizes: its Linux VM classes (gen1, `.gen2`, `.gen3`) and the
// Docker executor's, all x86_64. Arm has its own `arm.*` names.
constexpr std::array<std::string_view, 7> kX86Sizes = {"small", "medium", "medium+", "large",
                                                       "xlarge", "2xlarge", "2xlarge+"};

bool x86_size(std::string_view rc) {
  for (std::string_view gen : {".gen2", ".gen3"})
    if (rc.size() > gen.size() && rc.substr(rc.size() - gen.size()) == gen) rc.remove_suffix(gen.size());
  return std::find(kX86Sizes.begin(), kX86Sizes.end(), rc) != kX86Sizes.end();
}

// A value from the job file (hostile) as messages show it: quoted when it
// holds anything odd, cut at 128 bytes.
std::string job_value(const std::string& s) {
  const std::string cut = s.size() > 128 ? s.substr(0, 128) : s;
  return "`" + text::shown(cut) + (s.size() > 128 ? "...`" : "`");
}

std::string list_of(const std::vector<std::string>& v) { return v.empty() ? "none" : text::shown_list(v); }

std::string at(const std::string& file, const Mark& m) {
  return file + ":" + std::to_string(m.line) + ":" + std::to_string(m.column > 0 ? m.column : 1);
}

bool listed(const std::vector<std::string>& patterns, const std::string& value) {
  return std::any_of(patterns.begin(), patterns.end(), [&](const std::string& p) { return glob_match(p, value); });
}

struct Field {
  const char* what;     // "resource class", "machine image"
  const char* key;      // "resource_classes", "images"
  const std::string& value;
  Mark mark;
  MachinePlatform platform;
  const std::vector<std::string>& allowed;
  Mark list_mark;
};

// The entries of the profile's list that a Linux host of `host_arch`
// could run (the table applied to the patterns themselves).
std::vector<std::string> runnable(const std::vector<std::string>& allowed, bool images, std::string_view host_arch) {
  std::vector<std::string> out;
  for (const auto& a : allowed) {
    const MachinePlatform pf = images ? image_platform(a) : resource_class_platform(a);
    if ((pf.os == MachineOs::Any || pf.os == MachineOs::Linux) && (pf.arch.empty() || pf.arch == host_arch))
      out.push_back(a);
  }
  return out;
}

// Another OS, or another architecture: the host cannot be what the job
// asks. True (and an error in d) when it is so.
bool host_check(const Field& f, std::string_view host_arch, const Profile& p, MachineCheck& out, Diagnostics& d) {
  const std::string name = std::string(f.what) + " " + job_value(f.value);
  const std::string host = host_arch.empty() ? std::string("of an unknown architecture") : std::string(host_arch);
  const std::string instead = "what profile `" + p.name + "` allows (machine." + f.key + ") and this " +
                              (host_arch.empty() ? std::string() : host + " ") + "Linux host can run: " +
                              list_of(runnable(f.allowed, std::string_view(f.key) == "images", host_arch));
  std::string needs;
  if (f.platform.os != MachineOs::Any && f.platform.os != MachineOs::Linux) {
    needs = os_name(f.platform.os);
    d.error(f.mark,
            name + " is a " + needs + " machine (" + std::string(f.platform.source) +
                "), and this host runs Linux: the job would run on the wrong operating system",
            instead + "; a " + needs + " job needs a " + needs + " runner (no policy key changes this host's OS)");
    out.reason += (out.reason.empty() ? "" : "; ") + name + " needs a " + needs + " host; this host runs Linux";
  } else if (!f.platform.arch.empty() && f.platform.arch != host_arch) {
    needs = std::string(f.platform.arch);
    d.error(f.mark,
            name + " is an " + needs + " machine (" + std::string(f.platform.source) + "), and this host is " + host +
                " (uname -m): the job would run on the wrong architecture",
            instead + "; an " + needs + " job needs an " + needs +
                " runner (no policy key changes this host's architecture)");
    out.reason += (out.reason.empty() ? "" : "; ") + name + " needs an " + needs + " host; this host is " + host;
  } else {
    return false;
  }
  out.host_mismatch = true;
  return true;
}

// The host could, but the profile does not list it.
void policy_check(const Field& f, const Profile& p, const std::string& policy_file, MachineCheck& out,
                  Diagnostics& d) {
  if (listed(f.allowed, f.value)) return;
  const std::string key = std::string("machine.") + f.key;
  std::string where, fix;
  if (policy_file.empty()) {
    where = "the built-in policy's default list";
    fix = "to allow it, run the job under a policy file (--policy) whose profile lists it in " + key;
  } else if (f.list_mark.line > 0) {
    where = at(policy_file, f.list_mark);
    fix = "to allow it, add a pattern that matches it to " + key + " of profile `" + p.name + "` at " +
          at(policy_file, f.list_mark);
  } else {
    where = "the default list: profile `" + p.name + "` does not set it";
    fix = "to allow it, set " + key + " in profile `" + p.name + "`" +
          (p.mark.line > 0 ? " at " + at(policy_file, p.mark) : " in " + policy_file);
  }
  d.error(f.mark,
          std::string(f.what) + " " + job_value(f.value) + " is not allowed by profile `" + p.name +
              "`: it matches no pattern of " + key + " (" + where + ")",
          list_of(f.allowed) + "; " + fix);
  out.policy_refused = true;
  out.reason += (out.reason.empty() ? "" : "; ") + std::string("profile `") + p.name + "` does not allow " + f.what +
                " " + job_value(f.value) + " (" + key + ")";
}

}  // namespace

MachinePlatform resource_class_platform(std::string_view rc) {
  if (rc.find('/') != std::string_view::npos) return {MachineOs::Any, "", "a self-hosted runner class", true};
  if (starts_with(rc, "arm.")) return {MachineOs::Linux, "aarch64", "CircleCI's arm.* classes are Arm VMs", false};
  if (starts_with(rc, "gpu.nvidia."))
    return {MachineOs::Linux, "x86_64", "CircleCI's gpu.nvidia.* classes are x86_64 Linux VMs with a GPU", false};
  if (starts_with(rc, "windows.")) return {MachineOs::Windows, "x86_64", "CircleCI's windows.* classes", false};
  if (starts_with(rc, "macos.") || starts_with(rc, "m2pro.") || starts_with(rc, "m4pro."))
    return {MachineOs::MacOs, "", "CircleCI's macOS classes", false};
  if (x86_size(rc)) return {MachineOs::Linux, "x86_64", "CircleCI's plain sizes are x86_64 machines", false};
  return {};
}

MachinePlatform image_platform(std::string_view image) {
  if (starts_with(image, "windows-")) return {MachineOs::Windows, "", "CircleCI's windows-* images", false};
  if (starts_with(image, "macos") || starts_with(image, "xcode"))
    return {MachineOs::MacOs, "", "CircleCI's macOS images", false};
  if (image == "android" || starts_with(image, "android:"))
    return {MachineOs::Linux, "x86_64", "CircleCI's Android image runs x86 emulators on x86_64", false};
  if (starts_with(image, "linux-cuda-"))
    return {MachineOs::Linux, "x86_64", "CircleCI's linux-cuda-* images are for x86_64 GPU VMs", false};
  if (starts_with(image, "ubuntu-") || image == "default")
    return {MachineOs::Linux, "", "CircleCI's Ubuntu images, for x86_64 and Arm", false};
  return {};
}

const char* os_name(MachineOs os) {
  switch (os) {
    case MachineOs::Any: return "any OS";
    case MachineOs::Linux: return "Linux";
    case MachineOs::Windows: return "Windows";
    case MachineOs::MacOs: return "macOS";
  }
  return "?";
}

std::string normalize_arch(std::string_view m) {
  if (m == "arm64") return "aarch64";
  if (m == "amd64") return "x86_64";
  return std::string(m);
}

std::string host_arch() {
  utsname u{};
  if (uname(&u) != 0) return {};
  return normalize_arch(u.machine);
}

MachineCheck check_machine(const job::Job& j, const Profile& p, std::string_view host_arch,
                           const std::string& policy_file, Diagnostics& d) {
  MachineCheck out;
  const Machine& m = p.machine;
  // What the host is comes first: a job that cannot run here is told so,
  // not that a policy line would let it.
  auto check = [&](const Field& f) {
    if (!f.value.empty() && !host_check(f, host_arch, p, out, d)) policy_check(f, p, policy_file, out, d);
  };
  check({"machine image", "images", j.machine_image, j.machine_image_mark, image_platform(j.machine_image),
         m.images, m.images_mark});
  check({"resource class", "resource_classes", j.resource_class, j.resource_class_mark,
         resource_class_platform(j.resource_class), m.resource_classes, m.resource_classes_mark});
  return out;
}

}  // namespace gh::policy
