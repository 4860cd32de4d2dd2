// Checks of the JSON bodies that create or change daemon objects:
// containers, execs, networks, volumes. Each takes the strictly parsed
// body (parse_strict) and returns the body to forward, often rewritten:
// the owner label added, bind sources moved to their host paths, the job's
// resource ceilings filled in where the request sets none.
//
// Every key of every object a check reads is matched exactly against the
// 1.41 API's keys (see strict_json.hpp for why); a key the proxy does not
// know is refused, never passed on. A field counts as "not asking" when it
// is absent, null, false, 0, "", [] or {}; anything else asking for a
// refused feature is refused, even in a shape the daemon would reject
// itself. A field the checks interpret must have the type the API gives it
// (400 "json-type").
#pragma once

#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

#include "docker/proxy.hpp"
#include "docker/strict_json.hpp"

namespace gh::docker {

// What the body checks need to ask the daemon (the router implements it
// with inspect calls).
struct Ownership {
  virtual ~Ownership() = default;
  virtual bool container_owned(const std::string& name_or_id) = 0;
  virtual bool network_owned(const std::string& name_or_id) = 0;
  virtual bool volume_owned(const std::string& name) = 0;
  virtual bool image_usable(const std::string& ref) = 0;  // owned by the job, or matches JobRules.images
  // The full id to forward instead of a name the body used, so the object
  // checked is the object the daemon uses ("" when not the job's). The
  // defaults keep the name, for implementations that have no ids.
  virtual std::string container_id(const std::string& ref) { return container_owned(ref) ? ref : std::string(); }
  virtual std::string network_id(const std::string& ref) { return network_owned(ref) ? ref : std::string(); }
};

// POST /containers/create. Rules: "top-level-hostconfig", "unknown-key",
// "privileged", "cap-add", "security-opt", "masked-paths",
// "readonly-paths", "runtime", "annotations", "network-mode",
// "network-not-owned", "endpoint-driver-opts", "pid-mode", "ipc-mode",
// "uts-mode", "userns-mode", "cgroupns-mode", "cgroup", "cgroup-parent",
// "devices", "device-cgroup-rules", "device-requests", "blkio-devices",
// "storage-opt", "sysctls", "volume-driver", "volume-driver-opts",
// "isolation", "log-driver", "oom-kill-disable", "oom-score-adj",
// "publish-all", "ports", "bind-mount", "bind-options", "bind-propagation",
// "volume-not-owned", "mount-type", "volumes-from", "links", "image",
// "memory-limit", "pids-limit", "cpu-limit", "ulimits", "owner-label";
// 400 "json-type".
//
// Binds and bind Mounts may name only a BindRoot's job_path itself (after
// lexical clean-up): a subfolder could be swapped for a symlink between
// this check and the daemon's mount. The source is rewritten to the
// root's host_path. When JobRules.network_none, NetworkMode ""/"default"
// becomes "none" and "bridge" is refused: the job's own network policy
// holds for its containers. The job's ceilings fill HostConfig when it
// sets none (Memory, PidsLimit, and NanoCpus, or CpuQuota beside a
// CpuPeriod); a request above one is refused. Volume Mounts get the owner
// label in VolumeOptions.Labels, so an anonymous volume they create is the
// job's.
Checked<nlohmann::json> check_container_create(nlohmann::json body, const JobRules& rules, Ownership& own);

// POST /containers/{id}/update: resource keys and RestartPolicy only.
// Zero and null mean "unchanged" here, so nothing is filled in; asking for
// "unlimited" (Memory or PidsLimit below zero, PidsLimit 0) gets the
// ceiling instead, and CpuQuota below zero is refused. With a CPU ceiling,
// CpuQuota and CpuPeriod must be set together (the container's current
// period is unknown here). Same rules as create's resources.
Checked<nlohmann::json> check_container_update(nlohmann::json body, const JobRules& rules);

// POST /containers/{id}/exec. Rules: "unknown-key", "privileged-exec".
Checked<nlohmann::json> check_exec_create(nlohmann::json body);

// POST /networks/create. Rules: "unknown-key", "network-driver",
// "network-options", "network-ingress", "network-config-only",
// "network-config-from", "network-ipam-driver", "network-ipam-options",
// "network-ipam-config" (a chosen subnet becomes a host route through the
// new bridge, and one overlapping the host's own networks cuts the host
// off them; the daemon's default pools avoid that), "owner-label".
// Internal is forced true when JobRules.network_none.
Checked<nlohmann::json> check_network_create(nlohmann::json body, const JobRules& rules);

// POST /volumes/create. Rules: "unknown-key", "volume-driver",
// "volume-driver-opts" (the local driver's type/device/o options mount
// host devices and paths), "volume-cluster", "owner-label".
Checked<nlohmann::json> check_volume_create(nlohmann::json body, const JobRules& rules);

// Shared with the build checks. Ulimits (a JSON array of {Name, Hard,
// Soft}): "ulimits" when rtprio is raised (real-time scheduling starves
// the host; other ulimits are the container's own business), 400
// "json-type". Labels (a JSON object of strings, or null): the owner label
// set to the job id; "owner-label" when the body already sets it to
// another value, 400 "json-type".
// Go's path.Clean of an absolute path ("/" when nothing is left): how the
// daemon reads a bind source, and (without the slash) a context entry.
std::string clean_abs(std::string_view p);

Checked<Ok> check_ulimits(const nlohmann::json& list, std::string_view where);
Checked<Ok> add_owner_label(nlohmann::json& labels, const JobRules& rules, std::string_view where);

}  // namespace gh::docker
