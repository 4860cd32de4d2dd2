// The Docker proxy's shared vocabulary (docs/docker.md is the operator's
// reference). The proxy is its own process, one per job, started by the
// broker for a profile with `docker: {mode: proxy}`: it listens on the
// socket the job sees as /var/run/docker.sock and forwards each request it
// accepts to the daemon, one upstream connection per request.
//
// Error convention for the proxy: every check returns either its value or a
// Refusal (common/result.hpp's Result with a Refusal for its error: a value
// the caller must handle, never an exception across a module boundary). A Refusal becomes one HTTP answer to the job:
//   {"message": "gatehouse docker proxy: <message> (rule <rule>)"}
// with `status` (400 malformed request, 403 refused by a rule, 404 not the
// job's object, 413 too large, 431 header too large, 501 not supported),
// and one audit record naming the rule.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <variant>
#include <vector>

#include "common/result.hpp"

namespace gh::docker {

// The one API version the proxy speaks. Requests under another /vX.Y/
// prefix are refused; unversioned paths are read as this version; upstream
// requests always carry it. Debian 12's docker.io (20.10) speaks 1.41.
inline constexpr const char* kApiVersion = "1.41";

// The label that marks an object (container, network, volume, image) as
// belonging to a job; its value is the job id.
inline constexpr const char* kOwnerLabel = "org.gatehouse.job";

struct Refusal {
  int status = 403;
  std::string rule;     // short stable name: "privileged", "bind-mount", "json-duplicate-key", ...
  std::string message;  // what was refused and what is allowed instead
};

inline Refusal refuse(std::string rule, std::string message, int status = 403) {
  return Refusal{status, std::move(rule), std::move(message)};
}

// Either a T or the Refusal that stops the request (.error()).
template <typename T>
using Checked = Result<T, Refusal>;

// A job-view directory containers may bind, and where it is on the host
// (the daemon resolves bind sources on the host, not in the job's view).
struct BindRoot {
  std::string job_path;   // "/home/circleci/project"
  std::string host_path;  // "/var/lib/gatehouse/work/<job>/workspace"
};

struct PortRange {
  uint16_t first = 0, last = 0;
};

// Everything the proxy knows about its job: written by the broker into the
// proxy's config file (JSON, docker/proxy_config.cpp), read once at start.
struct JobRules {
  std::string job_id;                  // the owner label's value
  std::vector<BindRoot> bind_roots;    // default: the job's working directory
  std::vector<PortRange> ports;        // host ports that may be published; empty: none
  std::vector<std::string> images;     // glob patterns (normalised references) that may be pulled or used
  std::vector<std::string> push;       // glob patterns of push destinations
  bool buildkit = false;               // BuildKit's /session and /grpc
  uint64_t memory_bytes = 0;           // per-container ceiling; set when a request has none; 0: no ceiling
  uint64_t pids = 0;                   // likewise for the pids limit
  double cpus = 0;                     // ceiling on NanoCpus / CpuQuota; 0: none
  bool network_none = true;            // the job's own network mode is `none`
};

}  // namespace gh::docker
