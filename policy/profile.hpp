// The sandbox profile: every parameter of the sandbox a job runs in.
//
// The defaults below ARE the built-in profile (no --policy): the most
// restrictive useful one. A policy file's profile starts from these (or from
// the profile it `extends`) and overrides fields by name. `policy explain`
// prints every field, defaults included, so nothing here is invisible to an
// operator. docs/policy.md is the reference; keep the two in step.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "common/diagnostics.hpp"

namespace gh::policy {

struct UidPool {
  uint32_t first = 1900000;  // host uids, outside the usual subuid ranges
  uint32_t count = 64;
};

struct JobUser {
  std::string name = "circleci";
  uint32_t uid = 3434;  // inside the job's user namespace (as cimg images)
  uint32_t gid = 3434;
  std::string home = "/home/circleci";
  // uid and gid 0 inside the job's user namespace (still one unprivileged
  // host uid from the pool outside). The job keeps a few namespace-scoped
  // capabilities (see sandbox/caps.cpp) so it can own files in an overlay
  // root; it never gets capabilities over anything the host owns.
  bool root_in_namespace = false;
};

enum class RootFs {
  Host,     // the host's /usr (and /bin, /lib...) read-only: the default
  Overlay,  // the host's tools as the lower layer of an overlay whose upper
            // layer is a tmpfs of the job's: writes stay in the job
};

struct Filesystem {
  RootFs root = RootFs::Host;
  uint64_t overlay_bytes = 4ull << 30;  // tmpfs size of the overlay's upper layer (RootFs::Overlay)
  std::vector<std::string> read_only;   // extra host paths bound read-only at the same place
  std::vector<std::string> read_write;  // extra host paths bound read-write (dangerous; warned)
  std::vector<std::string> hidden;      // paths replaced by an empty read-only mount
  uint64_t tmp_bytes = 1ull << 30;      // tmpfs /tmp size cap
  uint64_t home_bytes = 1ull << 30;     // tmpfs HOME size cap
};

enum class NetworkMode {
  None,    // loopback only, in the job's own network namespace: the default
  Egress,  // only the host:port patterns in `allow` (not enforced by this build: exit 3)
  Host,    // the host's network namespace (dangerous; warned)
};

struct Network {
  NetworkMode mode = NetworkMode::None;
  // host:port patterns for Egress: `registry.npmjs.org:443`, `*.debian.org:80`,
  // `10.0.0.0/8:*`. Checked for shape; empty for the other modes.
  std::vector<std::string> allow;
  // Where `network:` is written (in the profile or the one it extends), for
  // warnings; line 0: not written. Not part of the meaning: not encoded or compared.
  Mark mark;
};

enum class DockerMode {
  Deny,    // no socket of any kind: the default
  Proxy,   // a filtering proxy (not in this build: exit 3)
  Direct,  // the host's socket: root on the host; needs the acknowledgement below
};

struct DockerProxyRules {
  std::vector<std::string> images;      // glob patterns of images that may be pulled or used as bases
  std::vector<std::string> push;        // glob patterns of push destinations
  std::vector<std::string> bind_paths;  // job-view paths containers may bind (default: the working directory)
  std::vector<std::string> ports;       // host ports that may be published ("8080", "9000-9010")
  bool buildkit = false;                // BuildKit's /session and /grpc endpoints
  std::optional<uint64_t> memory_bytes; // per-container limit (default: the profile's memory)
  std::optional<uint64_t> pids;         // per-container limit (default: the profile's pids)
};

struct Docker {
  DockerMode mode = DockerMode::Deny;
  // `direct` is refused unless the file says, in these words, that it knows:
  //   acknowledge: root-equivalent
  bool acknowledged_root_equivalent = false;
  std::string socket = "/var/run/docker.sock";  // the host socket `direct` binds (and `proxy` will reach)
  DockerProxyRules proxy;
};

struct Resources {
  uint64_t memory_bytes = 4ull << 30;   // cgroup memory limit; 0 = none (warned)
  uint64_t pids = 1024;                 // cgroup pids limit
  double cpus = 2.0;                    // cgroup cpu quota, in CPUs
  uint64_t max_run_time_s = 3 * 3600;   // whole job, wall clock
  uint64_t no_output_timeout_s = 600;   // default per step
  uint64_t open_files = 4096;           // RLIMIT_NOFILE
  uint64_t file_size_bytes = 16ull << 30;  // RLIMIT_FSIZE
};

// Syscall names moved into (allow) or out of (deny) the built-in seccomp
// allowlist (sandbox/seccomp.cpp). Names are checked against libseccomp's
// table at parse time; deny wins over allow.
struct SeccompChanges {
  std::vector<std::string> allow;
  std::vector<std::string> deny;
};

struct Environment {
  std::vector<std::pair<std::string, std::string>> set;  // fixed values for every job (win over the job's)
  std::vector<std::string> pass;  // names passed from the broker's environment
  std::vector<std::string> deny;  // names removed from the job's environment whoever set them
};

// One secret a profile exposes. The value is the file <secrets_dir>/<name>,
// which only root may read; the job gets it as an environment variable or as
// a file /run/secrets/<file> readable only by the job's uid, never both.
struct SecretExposure {
  std::string name;  // [A-Za-z0-9_.-]{1,64}: the file name under secrets_dir
  enum class As { Env, File } as = As::Env;
  std::string target;  // the variable name (Env) or the file name under /run/secrets (File)
  Mark mark;           // where the policy exposes it (for warnings)
};

// What a job may ask of the machine it runs on: CircleCI's `machine: image:`
// and `resource_class`, as glob patterns (rules' globs: `*` does not cross
// `/`, `**` does, `?` is one character). Both lists are sets (their order
// means nothing; the canonical form sorts them). On top of them, whatever
// the lists say, a job whose image or class names another OS or another
// architecture than this host's (`uname -m`) is refused (policy/machine.hpp
// has the table). The defaults: CircleCI's Linux images that the host's own
// system stands in for, and every class of a plain Linux machine of either
// architecture (the host's architecture then picks) or of a self-hosted
// runner (`namespace/name`); no GPU, Windows or macOS class, no Android or
// CUDA image (this host provides neither a GPU nor those SDKs).
struct Machine {
  std::vector<std::string> images = {"ubuntu-*", "default", "circleci/classic:*"};
  std::vector<std::string> resource_classes = {
      "small",       "medium",       "medium+",     "large",        "xlarge",        "2xlarge",       "2xlarge+",
      "medium.gen2", "large.gen2",   "xlarge.gen2", "2xlarge.gen2", "2xlarge+.gen2", "medium.gen3",   "large.gen3",
      "xlarge.gen3", "2xlarge.gen3", "arm.*",       "*/*"};
  // Where the list the profile uses was written (in it, or in the profile it
  // extends); line 0: the default above. The broker's refusals name it.
  Mark images_mark;
  Mark resource_classes_mark;
};

struct Profile {
  std::string name = "builtin";
  std::string extends;  // the profile this one was built on ("" = the built-in defaults)
  Mark mark;            // where the profile is defined
  JobUser user;
  UidPool uid_pool;
  Filesystem filesystem;
  Network network;
  Docker docker;
  Resources resources;
  SeccompChanges seccomp;
  Environment environment;
  std::vector<SecretExposure> secrets;
  Machine machine;
};

// The names the policy file uses for each mode, for the tools and the
// audit log.
namespace text {
inline const char* name(RootFs r) {
  switch (r) {
    case RootFs::Host: return "host";
    case RootFs::Overlay: return "overlay";
  }
  return "?";
}
inline const char* name(NetworkMode m) {
  switch (m) {
    case NetworkMode::None: return "none";
    case NetworkMode::Egress: return "egress";
    case NetworkMode::Host: return "host";
  }
  return "?";
}
inline const char* name(DockerMode m) {
  switch (m) {
    case DockerMode::Deny: return "deny";
    case DockerMode::Proxy: return "proxy";
    case DockerMode::Direct: return "direct";
  }
  return "?";
}
inline const char* name(SecretExposure::As a) {
  switch (a) {
    case SecretExposure::As::Env: return "env";
    case SecretExposure::As::File: return "file";
  }
  return "?";
}
}  // namespace text

// How much one profile may list. profile_parse.cpp refuses more, and the
// parse child's typed answer is bounded by the same numbers
// (ipc/policy_codec.cpp), so a policy that parses always fits the answer.
inline constexpr size_t kMaxProfilePaths = 256;   // read_only, read_write, hidden, docker.proxy.bind_paths (each)
inline constexpr size_t kMaxProfileEnv = 1000;    // environment.set, pass, deny (each)
inline constexpr size_t kMaxHostPatterns = 256;   // network.allow, docker.proxy.images, push, ports (each)
inline constexpr size_t kMaxSyscallNames = 512;   // seccomp.allow, seccomp.deny (each)
inline constexpr size_t kMaxSecrets = 64;         // secrets
inline constexpr size_t kMaxMachinePatterns = 256;  // machine.images, machine.resource_classes (each)

// The built-in profile (no --policy).
Profile builtin_profile();

// Sizes and durations as written in policy files: "512M", "2G", "10m", "1h30m".
std::optional<uint64_t> parse_size(const std::string& s);
std::optional<uint64_t> parse_duration_seconds(const std::string& s);

}  // namespace gh::policy
