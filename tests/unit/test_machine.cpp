// The machine a job asks for (`machine: image:`, `resource_class`) against
// this host and the profile's `machine` section (policy/machine.hpp): the
// table of what CircleCI's names imply, the globs, the default lists, the
// located refusals the broker shows (built here from hand-made jobs, as the
// job parser fills these fields), and the section's parsing, canonical form,
// diff, explain, lint and encoding.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "ipc/policy_codec.hpp"
#include "policy/job.hpp"
#include "policy/machine.hpp"
#include "policy/policy.hpp"
#include "tests/unit/policy_test_util.hpp"

using gh::Diagnostics;
using gh::Mark;
using gh::job::Job;
using gh::policy::check_machine;
using gh::policy::image_platform;
using gh::policy::MachineCheck;
using gh::policy::MachineOs;
using gh::policy::resource_class_platform;

namespace {

// A job file whose resource class and image sit at known places, as the job
// parser's marks point at the values.
const std::string kJobText =
    "version: 2.1\n"                                     // 1
    "jobs:\n"                                            // 2
    "  build:\n"                                         // 3
    "    machine:\n"                                     // 4
    "      image: IMAGE\n"                               // 5: the value at column 14
    "    resource_class: CLASS\n"                        // 6: the value at column 21
    "    steps:\n"                                       // 7
    "      - run: touch /tmp/ran\n";                     // 8

Job job(const std::string& image, const std::string& rc) {
  Job j;
  j.name = "build";
  j.machine_image = image;
  if (!image.empty()) j.machine_image_mark = {5, 14};
  j.resource_class = rc;
  if (!rc.empty()) j.resource_class_mark = {6, 21};
  return j;
}

std::string text_for(const std::string& image, const std::string& rc) {
  std::string t = kJobText;
  t.replace(t.find("IMAGE"), 5, image.empty() ? "x" : image);
  t.replace(t.find("CLASS"), 5, rc.empty() ? "x" : rc);
  return t;
}

struct Checked {
  MachineCheck check;
  std::string rendered;
};

Checked run_check(const std::string& image, const std::string& rc, const std::string& arch,
                  const gh::policy::Profile& p = gh::policy::builtin_policy().profiles.at(0),
                  const std::string& policy_file = "") {
  Diagnostics d("config.yml", text_for(image, rc));
  Checked out;
  out.check = check_machine(job(image, rc), p, arch, policy_file, d);
  out.rendered = d.render();
  CHECK(out.check.admitted() == out.rendered.empty());
  CHECK(out.check.admitted() == out.check.reason.empty());
  return out;
}

}  // namespace

TEST_CASE("what CircleCI's resource class names imply about the machine") {
  struct Row {
    const char* rc;
    MachineOs os;
    const char* arch;
    bool self_hosted;
  };
  const Row rows[] = {
      {"arm.medium", MachineOs::Linux, "aarch64", false},
      {"arm.large", MachineOs::Linux, "aarch64", false},
      {"arm.xlarge", MachineOs::Linux, "aarch64", false},
      {"arm.2xlarge", MachineOs::Linux, "aarch64", false},
      {"small", MachineOs::Linux, "x86_64", false},
      {"medium", MachineOs::Linux, "x86_64", false},
      {"medium+", MachineOs::Linux, "x86_64", false},
      {"large", MachineOs::Linux, "x86_64", false},
      {"xlarge", MachineOs::Linux, "x86_64", false},
      {"2xlarge", MachineOs::Linux, "x86_64", false},
      {"2xlarge+", MachineOs::Linux, "x86_64", false},
      {"large.gen2", MachineOs::Linux, "x86_64", false},
      {"2xlarge+.gen2", MachineOs::Linux, "x86_64", false},
      {"gpu.nvidia.small", MachineOs::Linux, "x86_64", false},
      {"gpu.nvidia.medium.multi", MachineOs::Linux, "x86_64", false},
      {"windows.medium", MachineOs::Windows, "x86_64", false},
      {"windows.gpu.nvidia.medium", MachineOs::Windows, "x86_64", false},
      {"macos.m1.medium.gen1", MachineOs::MacOs, "", false},
      {"m2pro.medium", MachineOs::MacOs, "", false},
      {"acme/linux-large", MachineOs::Any, "", true},
      {"acme/arm.large", MachineOs::Any, "", true},  // a runner class's name is the operator's, not CircleCI's
      {"huge", MachineOs::Any, "", false},
      {"large.gen3", MachineOs::Linux, "x86_64", false},
      {"large.gen4", MachineOs::Any, "", false},
      {"armlarge", MachineOs::Any, "", false},
      {"", MachineOs::Any, "", false},
  };
  for (const auto& r : rows) {
    CAPTURE(r.rc);
    const auto pf = resource_class_platform(r.rc);
    CHECK(pf.os == r.os);
    CHECK(pf.arch == r.arch);
    CHECK(pf.self_hosted == r.self_hosted);
  }
}

TEST_CASE("what CircleCI's machine image names imply about the machine") {
  struct Row {
    const char* image;
    MachineOs os;
    const char* arch;
  };
  const Row rows[] = {
      {"ubuntu-2204:2024.01.1", MachineOs::Linux, ""},  // CircleCI builds its Ubuntu images for both
      {"ubuntu-2004:current", MachineOs::Linux, ""},
      {"ubuntu-2404:edge", MachineOs::Linux, ""},
      {"default", MachineOs::Linux, ""},
      {"android:2024.01.1", MachineOs::Linux, "x86_64"},
      {"android", MachineOs::Linux, "x86_64"},
      {"linux-cuda-12:default", MachineOs::Linux, "x86_64"},
      {"windows-server-2022-gui:current", MachineOs::Windows, ""},
      {"windows-server-2019:2023.04.1", MachineOs::Windows, ""},
      {"windows-default", MachineOs::Windows, ""},
      {"macos-14", MachineOs::MacOs, ""},
      {"xcode:15.0", MachineOs::MacOs, ""},
      {"debian-12", MachineOs::Any, ""},
      {"androidish", MachineOs::Any, ""},
  };
  for (const auto& r : rows) {
    CAPTURE(r.image);
    const auto pf = image_platform(r.image);
    CHECK(pf.os == r.os);
    CHECK(pf.arch == r.arch);
  }
}

TEST_CASE("uname -m spellings") {
  CHECK(gh::policy::normalize_arch("x86_64") == "x86_64");
  CHECK(gh::policy::normalize_arch("amd64") == "x86_64");
  CHECK(gh::policy::normalize_arch("aarch64") == "aarch64");
  CHECK(gh::policy::normalize_arch("arm64") == "aarch64");
  CHECK(gh::policy::normalize_arch("riscv64") == "riscv64");
  const std::string here = gh::policy::host_arch();
  CHECK_FALSE(here.empty());
  CHECK(here == gh::policy::normalize_arch(here));
}

TEST_CASE("the default section: CircleCI's Linux images the host stands in for, plain Linux classes of both "
          "architectures and self-hosted runner classes") {
  const gh::policy::Machine m;
  CHECK(m.images == Strings{"ubuntu-*", "default", "circleci/classic:*"});
  CHECK(m.images_mark.line == 0);
  CHECK(m.resource_classes_mark.line == 0);
  auto allows = [](const Strings& patterns, const std::string& v) {
    for (const auto& p : patterns)
      if (gh::policy::glob_match(p, v)) return true;
    return false;
  };
  for (const char* ok : {"ubuntu-2204:2024.01.1", "ubuntu-2004:current", "default"}) {
    CAPTURE(ok);
    CHECK(allows(m.images, ok));
  }
  for (const char* no : {"android:2024.01.1", "linux-cuda-12:default", "windows-server-2022-gui:current", "debian",
                         "xubuntu-2204:x", "defaults"}) {
    CAPTURE(no);
    CHECK_FALSE(allows(m.images, no));
  }
  for (const char* ok : {"small", "medium", "medium+", "large", "xlarge", "2xlarge", "2xlarge+", "large.gen2",
                         "2xlarge+.gen2", "arm.medium", "arm.2xlarge", "acme/linux"}) {
    CAPTURE(ok);
    CHECK(allows(m.resource_classes, ok));
  }
  for (const char* no : {"gpu.nvidia.small", "gpu.nvidia.small.gen2", "windows.medium", "macos.m1.medium.gen1",
                         "huge", "acme/team/linux", "lage"}) {
    CAPTURE(no);
    CHECK_FALSE(allows(m.resource_classes, no));
  }
  // The built-in profile carries it.
  CHECK(gh::policy::builtin_profile().machine.resource_classes == m.resource_classes);
}

TEST_CASE("check_machine: an arm class on an x86_64 host is refused at the value, naming the host") {
  const auto c = run_check("", "arm.large", "x86_64");
  CHECK(c.check.host_mismatch);
  CHECK_FALSE(c.check.policy_refused);
  CHECK(c.rendered ==
        "config.yml:6:21: error: resource class `arm.large` is an aarch64 machine (CircleCI's arm.* classes are Arm "
        "VMs), and this host is x86_64 (uname -m): the job would run on the wrong architecture\n"
        "      resource_class: arm.large\n"
        "                      ^\n"
        "  allowed here: what profile `default` allows (machine.resource_classes) and this x86_64 Linux host can run: "
        "small, medium, medium+, large, xlarge, 2xlarge, 2xlarge+, medium.gen2, large.gen2, xlarge.gen2, "
        "2xlarge.gen2, 2xlarge+.gen2, medium.gen3, large.gen3, xlarge.gen3, 2xlarge.gen3, */*; an aarch64 job needs an aarch64 runner (no policy key changes this "
        "host's architecture)\n");
  CHECK(c.check.reason == "resource class `arm.large` needs an aarch64 host; this host is x86_64");
  // The same job on an Arm host runs; a plain size there is the wrong way round.
  CHECK(run_check("", "arm.large", "aarch64").check.admitted());
  const auto back = run_check("ubuntu-2204:2024.01.1", "large", "aarch64");
  CHECK(back.check.host_mismatch);
  CHECK(back.check.reason == "resource class `large` needs an x86_64 host; this host is aarch64");
  CHECK(back.rendered.find("what profile `default` allows (machine.resource_classes) and this aarch64 Linux host "
                           "can run: arm.*, */*;") != std::string::npos);
  // A listed arm class does not make an x86_64 host an Arm one.
  Profile p = gh::policy::builtin_profile();
  p.name = "arm";
  p.machine.resource_classes = {"arm.*"};
  CHECK(run_check("", "arm.medium", "x86_64", p, "policy.yaml").check.host_mismatch);
}

TEST_CASE("check_machine: a Windows or macOS image or class is refused on this Linux host") {
  const auto c = run_check("windows-server-2022-gui:current", "", "x86_64");
  CHECK(c.check.host_mismatch);
  CHECK(c.rendered ==
        "config.yml:5:14: error: machine image `windows-server-2022-gui:current` is a Windows machine (CircleCI's "
        "windows-* images), and this host runs Linux: the job would run on the wrong operating system\n"
        "        image: windows-server-2022-gui:current\n"
        "               ^\n"
        "  allowed here: what profile `default` allows (machine.images) and this x86_64 Linux host can run: "
        "ubuntu-*, default, circleci/classic:*; a Windows job needs a Windows runner (no policy key changes this host's OS)\n");
  CHECK(c.check.reason == "machine image `windows-server-2022-gui:current` needs a Windows host; this host runs Linux");
  // Both wrong: both reported, in the file's order.
  const auto both = run_check("windows-server-2022-gui:current", "windows.medium", "x86_64");
  CHECK(both.check.host_mismatch);
  CHECK(both.rendered.find("config.yml:5:14: error: machine image") < both.rendered.find("config.yml:6:21: error: resource class `windows.medium` is a Windows machine"));
  CHECK(run_check("xcode:15.0", "", "aarch64").check.host_mismatch);
  CHECK(run_check("", "macos.m1.medium.gen1", "aarch64").check.host_mismatch);
  // Android's image is x86_64 Linux: another architecture on an Arm host.
  Profile p = gh::policy::builtin_profile();
  p.machine.images = {"android:*"};
  CHECK(run_check("android:2024.01.1", "", "aarch64", p, "policy.yaml").check.host_mismatch);
  CHECK(run_check("android:2024.01.1", "", "x86_64", p, "policy.yaml").check.admitted());
}

TEST_CASE("check_machine: what this host is and the profile lists runs; a job naming nothing is not checked") {
  CHECK(run_check("ubuntu-2204:2024.01.1", "large", "x86_64").check.admitted());
  CHECK(run_check("ubuntu-2004:current", "medium.gen2", "x86_64").check.admitted());
  CHECK(run_check("default", "acme/linux", "x86_64").check.admitted());
  CHECK(run_check("default", "acme/linux", "riscv64").check.admitted());  // a runner class is this host
  CHECK(run_check("", "", "x86_64").check.admitted());
  Profile none = gh::policy::builtin_profile();
  none.machine.images.clear();
  none.machine.resource_classes.clear();
  CHECK(run_check("", "", "x86_64", none, "policy.yaml").check.admitted());
  CHECK(run_check("default", "", "x86_64", none, "policy.yaml").check.policy_refused);
}

TEST_CASE("check_machine: a class or image the profile does not list names the profile and the line to change") {
  // The built-in policy: only its defaults, and a policy file is the way out.
  const auto builtin = run_check("", "gpu.nvidia.small", "x86_64");
  CHECK(builtin.check.policy_refused);
  CHECK_FALSE(builtin.check.host_mismatch);
  CHECK(builtin.rendered ==
        "config.yml:6:21: error: resource class `gpu.nvidia.small` is not allowed by profile `default`: it matches "
        "no pattern of machine.resource_classes (the built-in policy's default list)\n"
        "      resource_class: gpu.nvidia.small\n"
        "                      ^\n"
        "  allowed here: small, medium, medium+, large, xlarge, 2xlarge, 2xlarge+, medium.gen2, large.gen2, "
        "xlarge.gen2, 2xlarge.gen2, 2xlarge+.gen2, medium.gen3, large.gen3, xlarge.gen3, 2xlarge.gen3, arm.*, */*; to allow it, run the job under a policy file "
        "(--policy) whose profile lists it in machine.resource_classes\n");
  CHECK(builtin.check.reason ==
        "profile `default` does not allow resource class `gpu.nvidia.small` (machine.resource_classes)");

  // A file whose profile writes the list: that line.
  const Policy pol = accepted(
      "version: 1\n"
      "profiles:\n"
      "  default: {}\n"
      "  ci:\n"
      "    machine:\n"
      "      images: [\"ubuntu-2204:*\"]\n"
      "      resource_classes: [medium, large]\n"
      "rules:\n"
      "  - profile: ci\n");
  const auto listed = run_check("ubuntu-2004:current", "xlarge", "x86_64", named(pol, "ci"), "/etc/gatehouse/policy.yaml");
  CHECK(listed.check.policy_refused);
  CHECK(listed.rendered ==
        "config.yml:5:14: error: machine image `ubuntu-2004:current` is not allowed by profile `ci`: it matches no "
        "pattern of machine.images (/etc/gatehouse/policy.yaml:6:7)\n"
        "        image: ubuntu-2004:current\n"
        "               ^\n"
        "  allowed here: ubuntu-2204:*; to allow it, add a pattern that matches it to machine.images of profile `ci` "
        "at /etc/gatehouse/policy.yaml:6:7\n"
        "config.yml:6:21: error: resource class `xlarge` is not allowed by profile `ci`: it matches no pattern of "
        "machine.resource_classes (/etc/gatehouse/policy.yaml:7:7)\n"
        "      resource_class: xlarge\n"
        "                      ^\n"
        "  allowed here: medium, large; to allow it, add a pattern that matches it to machine.resource_classes of "
        "profile `ci` at /etc/gatehouse/policy.yaml:7:7\n");
  CHECK(listed.check.reason ==
        "profile `ci` does not allow machine image `ubuntu-2004:current` (machine.images); profile `ci` does not "
        "allow resource class `xlarge` (machine.resource_classes)");
  CHECK(run_check("ubuntu-2204:2024.01.1", "large", "x86_64", named(pol, "ci"), "p.yaml").check.admitted());

  // A profile on the defaults: its own line, where the section would go.
  const auto dflt = run_check("", "gpu.nvidia.small", "x86_64", named(pol, "default"), "policy.yaml");
  CHECK(dflt.rendered.find("(the default list: profile `default` does not set it)") != std::string::npos);
  CHECK(dflt.rendered.find("to allow it, set machine.resource_classes in profile `default` at policy.yaml:3:3\n") !=
        std::string::npos);

  // Host first: a class of another architecture is that, not a policy matter.
  const auto arm = run_check("", "arm.large", "x86_64", named(pol, "ci"), "policy.yaml");
  CHECK(arm.check.host_mismatch);
  CHECK_FALSE(arm.check.policy_refused);
  CHECK(arm.rendered.find("this x86_64 Linux host can run: medium, large;") != std::string::npos);
}

TEST_CASE("check_machine: an inherited list points at the parent's line; hostile values are shown safely") {
  const Policy pol = accepted(
      "version: 1\n"
      "profiles:\n"
      "  base:\n"
      "    machine: {resource_classes: [\"acme/*\"]}\n"
      "  child:\n"
      "    extends: base\n"
      "    machine: {images: [default]}\n"
      "rules:\n"
      "  - profile: child\n");
  const Profile& child = named(pol, "child");
  CHECK(child.machine.resource_classes == Strings{"acme/*"});
  CHECK(child.machine.resource_classes_mark.line == 4);
  CHECK(child.machine.images_mark.line == 7);
  const auto c = run_check("", "large", "x86_64", child, "policy.yaml");
  INFO(c.rendered);
  CHECK(c.rendered.find("at policy.yaml:4:15\n") != std::string::npos);

  Diagnostics d("config.yml", "");
  Job j = job("", std::string("\x1b[2Jlarge") + std::string(200, 'x'));
  const auto h = check_machine(j, child, "x86_64", "policy.yaml", d);
  CHECK(h.policy_refused);
  const std::string r = d.render();
  CHECK(r.find('\x1b') == std::string::npos);
  INFO(r);
  CHECK(r.find("resource class `\"\\x1b[2Jlargexxx") != std::string::npos);
  CHECK(r.find("xxx\"...` is not allowed") != std::string::npos);
}

TEST_CASE("policy: the machine section, its errors at line:col, extends") {
  const Profile m = only("    machine:\n"
                         "      images: [\"ubuntu-2204:*\", \"ubuntu-2004:*\", default]\n"
                         "      resource_classes: [medium, large, \"arm.*\", \"acme/*\"]\n");
  CHECK(m.machine.images == Strings{"ubuntu-2204:*", "ubuntu-2004:*", "default"});
  CHECK(m.machine.resource_classes == Strings{"medium", "large", "arm.*", "acme/*"});
  CHECK(m.machine.images_mark.line == 5);
  CHECK(m.machine.images_mark.column == 7);
  CHECK(m.machine.resource_classes_mark.line == 6);
  // One list written, the other default.
  const Profile half = only("    machine: {images: []}\n");
  CHECK(half.machine.images.empty());
  CHECK(half.machine.resource_classes == gh::policy::Machine{}.resource_classes);
  CHECK(half.machine.resource_classes_mark.line == 0);
  CHECK(only("    machine: {}\n").machine.images == gh::policy::Machine{}.images);

  refused_at(profile("    machine: {colour: blue}\n"), 4, 15, "unknown key `colour` in `machine`");
  refused_at(profile("    machine: [ubuntu]\n"), 4, 14, "`machine` must be a mapping");
  refused_at(profile("    machine: {images: ubuntu-2204}\n"), 4, 23, "`images` must be a list");
  refused_at(profile("    machine:\n      images: [\"ubuntu 2204\"]\n"), 5, 16, "has a character other than");
  refused_at(profile("    machine:\n      resource_classes: [large, \"\"]\n"), 5, 33, "is empty");
  refused_at(profile("    machine:\n      resource_classes: [large, large]\n"), 5, 33, "`large` is listed twice");
  refused_at(profile("    machine:\n      images: [" + std::string(129, 'a') + "]\n"), 5, 16,
             "is longer than 128 bytes");
  refused_at(profile("    machine:\n      images: [{a: b}]\n"), 5, 16, "");
  std::string many = "    machine:\n      images: [";
  for (int i = 0; i < 257; ++i) many += (i ? ", " : "") + std::string("i") + std::to_string(i);
  refused_at(profile(many + "]\n"), 5, 7, "more than 256");
  refused_at(profile("    machines: {}\n"), 4, 5, "unknown key `machines` in profile `default`");

  // A child's list replaces the parent's; what it does not write it inherits.
  const Policy pol = accepted("version: 1\n"
                              "profiles:\n"
                              "  default:\n"
                              "    machine: {images: [a, b], resource_classes: [c]}\n"
                              "  child:\n"
                              "    extends: default\n"
                              "    machine: {images: [z]}\n");
  CHECK(named(pol, "child").machine.images == Strings{"z"});
  CHECK(named(pol, "child").machine.resource_classes == Strings{"c"});
}

TEST_CASE("canonical form: the lists are sets, sorted; diff: added widens, removed narrows, order is nothing") {
  const Policy a = accepted("version: 1\nprofiles:\n  default:\n"
                            "    machine: {images: [b, a], resource_classes: [\"arm.*\", large]}\n");
  const Policy b = accepted("version: 1\nprofiles:\n  default:\n"
                            "    machine: {images: [a, b], resource_classes: [large, \"arm.*\"]}\n");
  const std::string c = gh::policy::canonical_yaml(a);
  CHECK(c.find("    machine:\n      images: [\"a\", \"b\"]\n      resource_classes: [\"arm.*\", \"large\"]\n") !=
        std::string::npos);
  CHECK(c == gh::policy::canonical_yaml(b));
  CHECK(gh::policy::policy_digest(a) == gh::policy::policy_digest(b));
  // The canonical form of the defaults, and its fixed point.
  const Policy builtin = gh::policy::builtin_policy();
  const std::string bc = gh::policy::canonical_yaml(builtin);
  CHECK(bc.find("    machine:\n      images: [\"circleci/classic:*\", \"default\", \"ubuntu-*\"]\n      resource_classes: [\"*/*\", "
                "\"2xlarge\", \"2xlarge+\", \"2xlarge+.gen2\", \"2xlarge.gen2\", \"2xlarge.gen3\", \"arm.*\", \"large\", "
                "\"large.gen2\", \"large.gen3\", \"medium\", \"medium+\", \"medium.gen2\", \"medium.gen3\", \"small\", "
                "\"xlarge\", \"xlarge.gen2\", \"xlarge.gen3\"]\n") !=
        std::string::npos);
  CHECK(gh::policy::canonical_yaml(accepted(bc)) == bc);

  auto lines = [](const Policy& x, const Policy& y) {
    std::vector<std::pair<gh::policy::DiffLine::Kind, std::string>> out;
    for (const auto& l : gh::policy::diff(x, y))
      if (l.text.find("machine.") != std::string::npos) out.emplace_back(l.kind, l.text);
    return out;
  };
  using K = gh::policy::DiffLine::Kind;
  const auto same = lines(a, b);
  REQUIRE(same.size() == 2);
  CHECK(same[0] == std::make_pair(K::Unchanged, std::string("profile `default`: machine.images: a, b")));
  CHECK(same[1] == std::make_pair(K::Unchanged, std::string("profile `default`: machine.resource_classes: large, arm.*")));
  const Policy c2 = accepted("version: 1\nprofiles:\n  default:\n"
                             "    machine: {images: [a, \"android:*\"], resource_classes: [large]}\n");
  const auto changed = lines(a, c2);
  // Patterns compared by what they match (policy/glob_cover.hpp): `b` out and
  // `android:*` in is neither narrower nor wider.
  REQUIRE(changed.size() == 2);
  CHECK(changed[0] == std::make_pair(K::Widened, std::string("profile `default`: machine.images: added android:*, removed b "
                                                             "(changed, not provably narrower)")));
  CHECK(changed[1] == std::make_pair(K::Narrowed, std::string("profile `default`: machine.resource_classes: removed arm.*")));
  const auto back = lines(c2, a);
  CHECK(back[0].first == K::Widened);
}

TEST_CASE("explain and lint: the lists, the host check no list lifts, and names that cannot mean what they seem") {
  const Policy p = accepted("version: 1\nprofiles:\n  default:\n"
                            "    machine:\n"
                            "      images: [default, \"windows-server-2022-gui:*\", \"linux-cuda-12:*\"]\n"
                            "      resource_classes: [large, \"gpu.nvidia.*\", \"macos.*\", \"arm.*\"]\n");
  const std::string e = gh::policy::explain_profile(p.profiles[0], p);
  CHECK(e.find("  Machine images a job may name: default, windows-server-2022-gui:*, linux-cuda-12:*\n") !=
        std::string::npos);
  CHECK(e.find("  Resource classes a job may name: large, gpu.nvidia.*, macos.*, arm.*\n") != std::string::npos);
  CHECK(e.find("a class of another\n    architecture than the host's (arm.* is aarch64") != std::string::npos);

  Diagnostics d("policy.yaml");
  gh::policy::lint(p, d);
  std::vector<std::string> w;
  for (const auto& x : d.all())
    if (x.message.find("machine.") != std::string::npos) w.push_back(std::to_string(x.mark.line) + " " + x.message);
  REQUIRE(w.size() == 4);
  CHECK(w[0] == "5 profile `default`: machine.images `windows-server-2022-gui:*` names Windows machines: this Linux "
                "runner refuses such jobs whatever the policy lists");
  CHECK(w[1] == "5 profile `default`: machine.images `linux-cuda-12:*` names GPU machines, and the sandbox gives jobs "
                "no GPU device");
  CHECK(w[2] == "6 profile `default`: machine.resource_classes `gpu.nvidia.*` names GPU machines, and the sandbox "
                "gives jobs no GPU device");
  CHECK(w[3] == "6 profile `default`: machine.resource_classes `macos.*` names macOS machines: this Linux runner "
                "refuses such jobs whatever the policy lists");
  // The defaults warn about nothing.
  Diagnostics quiet("policy.yaml");
  gh::policy::lint(gh::policy::builtin_policy(), quiet);
  CHECK(quiet.all().empty());
}

TEST_CASE("the parse child's answer carries the lists and the marks the broker names; bad patterns are refused") {
  const Policy p = accepted("version: 1\nprofiles:\n  default:\n"
                            "    machine: {images: [\"ubuntu-2204:*\"], resource_classes: [\"acme/*\"]}\n");
  auto back = gh::ipc::decode<Policy>(gh::ipc::encode(p));
  REQUIRE(back.ok());
  const Profile& b = back->profiles.at(0);
  CHECK(b.machine.images == Strings{"ubuntu-2204:*"});
  CHECK(b.machine.resource_classes == Strings{"acme/*"});
  CHECK(b.machine.images_mark.line == 4);
  CHECK(b.machine.images_mark.column == 15);
  CHECK(b.machine.resource_classes_mark.line == 4);
  CHECK(b.mark.line == 3);

  auto refusal = [](const Policy& x) {
    auto r = gh::ipc::decode<Policy>(gh::ipc::encode(x));
    return r.ok() ? std::string() : r.error().message;
  };
  Policy bad = gh::policy::builtin_policy();
  bad.profiles[0].machine.images = {"ubuntu 2204"};
  CHECK(refusal(bad) ==
        "profile `default`: machine.images entry `ubuntu 2204` has a character other than A-Z a-z 0-9 . _ - + : / * ?");
  bad = gh::policy::builtin_policy();
  bad.profiles[0].machine.resource_classes = {std::string("lar\0ge", 6)};
  CHECK(refusal(bad) == "profile `default`: machine.resource_classes entry `lar?ge` holds a NUL byte");
  bad = gh::policy::builtin_policy();
  bad.profiles[0].machine.resource_classes = {std::string(129, 'a')};
  CHECK(refusal(bad) == "a string of 129 bytes where at most 128 may be");
  bad = gh::policy::builtin_policy();
  bad.profiles[0].machine.images_mark = {-5, 2000000000};
  auto clamped = gh::ipc::decode<Policy>(gh::ipc::encode(bad));
  REQUIRE(clamped.ok());
  CHECK(clamped->profiles[0].machine.images_mark.line == 0);
  CHECK(clamped->profiles[0].machine.images_mark.column == static_cast<int>(gh::policy::kMaxPolicyFileBytes));
}
