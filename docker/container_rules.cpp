#include "docker/container_rules.hpp"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "docker/strict_json.hpp"

namespace gh::docker {

namespace {

using nlohmann::json;
using Keys = std::span<const std::string_view>;

// The checks nest deeply; unwinding to the public entry point with the
// first refusal keeps each one a straight line. Nothing throws past this
// file: every public function catches Stop.
struct Stop {
  Refusal r;
};
[[noreturn]] void stop(std::string rule, std::string message, int status = 403) {
  throw Stop{refuse(std::move(rule), std::move(message), status)};
}

// The 1.41 API's keys (api/types/container, network, volume, mount).
constexpr std::string_view kConfigKeys[] = {
    "Hostname", "Domainname", "User", "AttachStdin", "AttachStdout", "AttachStderr", "ExposedPorts", "Tty",
    "OpenStdin", "StdinOnce", "Env", "Cmd", "Healthcheck", "ArgsEscaped", "Image", "Volumes", "WorkingDir",
    "Entrypoint", "NetworkDisabled", "MacAddress", "OnBuild", "Labels", "StopSignal", "StopTimeout", "Shell"};
constexpr std::string_view kResourceKeys[] = {
    "CpuShares", "Memory", "NanoCpus", "CgroupParent", "BlkioWeight", "BlkioWeightDevice", "BlkioDeviceReadBps",
    "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps", "CpuPeriod", "CpuQuota",
    "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetCpus", "CpusetMems", "Devices", "DeviceCgroupRules",
    "DeviceRequests", "KernelMemory", "KernelMemoryTCP", "MemoryReservation", "MemorySwap", "MemorySwappiness",
    "OomKillDisable", "PidsLimit", "Ulimits", "CpuCount", "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth"};
constexpr std::string_view kHostOnlyKeys[] = {
    "Binds", "ContainerIDFile", "LogConfig", "NetworkMode", "PortBindings", "RestartPolicy", "AutoRemove",
    "VolumeDriver", "VolumesFrom", "Mounts", "CapAdd", "CapDrop", "CgroupnsMode", "Dns", "DnsOptions", "DnsSearch",
    "ExtraHosts", "GroupAdd", "IpcMode", "Cgroup", "Links", "OomScoreAdj", "PidMode", "Privileged",
    "PublishAllPorts", "ReadonlyRootfs", "SecurityOpt", "StorageOpt", "Tmpfs", "UTSMode", "UsernsMode", "ShmSize",
    "Sysctls", "Runtime", "ConsoleSize", "Isolation", "MaskedPaths", "ReadonlyPaths", "Init", "Annotations"};
constexpr std::string_view kEndpointKeys[] = {
    "IPAMConfig", "Links", "Aliases", "NetworkID", "EndpointID", "Gateway", "IPAddress", "IPPrefixLen",
    "IPv6Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen", "MacAddress", "DriverOpts"};
constexpr std::string_view kMountKeys[] = {"Type", "Source", "Target", "ReadOnly", "Consistency",
                                           "BindOptions", "VolumeOptions", "TmpfsOptions"};
constexpr std::string_view kExecKeys[] = {"AttachStdin", "AttachStdout", "AttachStderr", "DetachKeys",
                                          "Tty", "Env", "Cmd", "Privileged", "User", "WorkingDir",
                                          "ConsoleSize", "Detach"};
constexpr std::string_view kNetworkKeys[] = {"Name", "CheckDuplicate", "Driver", "Internal", "Attachable",
                                             "Ingress", "IPAM", "EnableIPv6", "Options", "Labels", "Scope",
                                             "ConfigOnly", "ConfigFrom"};
constexpr std::string_view kVolumeKeys[] = {"Name", "Driver", "DriverOpts", "Labels", "ClusterVolumeSpec"};

const std::vector<std::string_view>& host_config_keys() {
  static const std::vector<std::string_view> all = [] {
    std::vector<std::string_view> v(std::begin(kHostOnlyKeys), std::end(kHostOnlyKeys));
    v.insert(v.end(), std::begin(kResourceKeys), std::end(kResourceKeys));
    return v;
  }();
  return all;
}

bool in(Keys list, std::string_view k) {
  for (auto n : list)
    if (n == k) return true;
  return false;
}

std::string at(std::string_view where, std::string_view key) {
  return where.empty() ? std::string(key) : std::string(where) + "." + std::string(key);
}

void keys(const json& obj, Keys known, std::string_view where) {
  if (auto k = known_keys(obj, known, where); !k) throw Stop{k.error()};
}

// A field, or nullptr when absent or null (the daemon reads both alike).
const json* get(const json& obj, std::string_view key) {
  if (!obj.is_object()) return nullptr;
  auto it = obj.find(std::string(key));
  return it == obj.end() || it->is_null() ? nullptr : &*it;
}

[[noreturn]] void bad_type(std::string_view where, std::string_view key, std::string_view want) {
  stop("json-type", at(where, key) + " must be " + std::string(want), 400);
}

const json* object_at(const json& obj, std::string_view key, std::string_view where) {
  const json* v = get(obj, key);
  if (v && !v->is_object()) bad_type(where, key, "an object");
  return v;
}

const json* array_at(const json& obj, std::string_view key, std::string_view where) {
  const json* v = get(obj, key);
  if (v && !v->is_array()) bad_type(where, key, "an array");
  return v;
}

std::string string_at(const json& obj, std::string_view key, std::string_view where) {
  const json* v = get(obj, key);
  if (!v) return "";
  if (!v->is_string()) bad_type(where, key, "a string");
  return v->get<std::string>();
}

std::vector<std::string> strings_at(const json& obj, std::string_view key, std::string_view where) {
  std::vector<std::string> out;
  if (const json* a = array_at(obj, key, where))
    for (const auto& e : *a) {
      if (!e.is_string()) bad_type(where, key, "an array of strings");
      out.push_back(e.get<std::string>());
    }
  return out;
}

std::optional<int64_t> opt_int_at(const json& obj, std::string_view key, std::string_view where) {
  const json* v = get(obj, key);
  if (!v) return std::nullopt;
  if (!v->is_number_integer() ||
      (v->is_number_unsigned() && v->get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())))
    bad_type(where, key, "an integer");
  return v->get<int64_t>();
}

int64_t int_at(const json& obj, std::string_view key, std::string_view where) {
  return opt_int_at(obj, key, where).value_or(0);
}

void refuse_set(const json& obj, std::string_view key, std::string_view where, std::string rule,
                std::string_view why) {
  if (!json_unset(get(obj, key))) stop(std::move(rule), at(where, key) + " is refused: " + std::string(why));
}

bool shares_namespace(const std::string& mode) { return mode == "host" || mode.starts_with("container:"); }

// The host path a bind source stands for, or a refusal.
std::string bind_source(const JobRules& rules, const std::string& src, std::string_view where) {
  std::string c = clean_abs(src);
  for (const auto& b : rules.bind_roots)
    if (clean_abs(b.job_path) == c) return b.host_path;
  std::string roots;
  for (const auto& b : rules.bind_roots) roots += (roots.empty() ? "" : ", ") + b.job_path;
  stop("bind-mount", std::string(where) + " binds " + src + ": only " +
                         (roots.empty() ? std::string("no folder (this job has no bind roots)") : roots) +
                         " may be bound, each as a whole (a folder inside one could be swapped for a symbolic "
                         "link before the daemon mounts it); bind the root and use -w or a path under its mount "
                         "point to reach the folder");
}

void volume_source(Ownership& own, const std::string& name, std::string_view where) {
  if (!own.volume_owned(name))
    stop("volume-not-owned", std::string(where) + " names the volume " + name +
                                 ", which this job did not create; create it first with `docker volume create` "
                                 "through this proxy, or use an anonymous volume");
}

std::string container_ref(Ownership& own, const std::string& name, const std::string& rule, std::string_view where) {
  std::string id = own.container_id(name);
  if (id.empty())
    stop(rule, std::string(where) + " names the container " + name + ", which is not one of this job's containers");
  return id;
}

// "name[:suffix]" entries (VolumesFrom's mode, a link's alias) with the
// name replaced by the owned container's id; a link keeps its name as its
// alias when it had none.
json owned_refs(Ownership& own, const std::vector<std::string>& entries, const std::string& rule, std::string_view where,
                bool alias_defaults_to_name) {
  json out = json::array();
  for (const auto& e : entries) {
    size_t colon = e.find(':');
    std::string name = e.substr(0, colon);
    if (name.starts_with("/")) name = name.substr(1);
    std::string rest = colon == std::string::npos ? (alias_defaults_to_name ? ":" + name : "") : e.substr(colon);
    out.push_back(container_ref(own, name, rule, where) + rest);
  }
  return out;
}

// Applies the network rules to a NetworkMode value or an EndpointsConfig
// key; returns the value to use.
std::string network_name(const std::string& n, const JobRules& rules, Ownership& own, std::string_view where,
                          bool rewritable) {
  if (n == "host" || n.starts_with("container:"))
    stop("network-mode", std::string(where) + " " + n +
                             " is refused: it shares a network stack the job does not own; use a network this job "
                             "created, or none");
  if (n == "none") return n;
  if (n.empty() || n == "default" || n == "bridge") {
    if (!rules.network_none) return n;
    if (rewritable && n != "bridge") return "none";
    stop("network-mode", std::string(where) + " " + (n.empty() ? std::string("\"\"") : n) +
                             " is refused: this job has no network, and neither do its containers; use none or a "
                             "network this job created (it is internal)");
  }
  std::string id = own.network_id(n);
  if (id.empty())
    stop("network-not-owned", std::string(where) + " names the network " + n +
                                  ", which this job did not create; create one with `docker network create` "
                                  "through this proxy");
  return rewritable ? id : n;
}

void check_ulimits_or_stop(const json& list, std::string_view where) {
  if (list.is_null()) return;
  if (!list.is_array()) stop("json-type", std::string(where) + " must be an array", 400);
  for (const auto& u : list) {
    if (!u.is_object()) stop("json-type", std::string(where) + " must hold objects", 400);
    keys(u, std::initializer_list<std::string_view>{"Name", "Hard", "Soft"}, where);
    if (iequals_ascii(string_at(u, "Name", where), "rtprio") &&
        (int_at(u, "Hard", where) != 0 || int_at(u, "Soft", where) != 0))
      stop("ulimits", std::string(where) + " raises rtprio, which lets the container's processes take real-time "
                                           "scheduling and starve the host; other ulimits are allowed");
  }
}

void owner_label_or_stop(json& labels, const JobRules& rules, std::string_view where) {
  if (labels.is_null()) labels = json::object();
  if (!labels.is_object()) stop("json-type", std::string(where) + " must be an object", 400);
  for (const auto& [k, v] : labels.items())
    if (!v.is_string()) stop("json-type", std::string(where) + "." + k + " must be a string", 400);
  auto it = labels.find(kOwnerLabel);
  if (it != labels.end() && it->get<std::string>() != rules.job_id)
    stop("owner-label", std::string(where) + " sets " + kOwnerLabel +
                            ", the label that marks this job's objects; the proxy sets it, leave it out");
  labels[kOwnerLabel] = rules.job_id;
}

std::string cpus_text(double cpus) {
  std::string s = std::to_string(cpus);
  while (s.size() > 1 && s.back() == '0') s.pop_back();
  if (!s.empty() && s.back() == '.') s.pop_back();
  return s;
}

void cpu_limits(json& r, std::string_view where, const JobRules& rules, bool update) {
  if (!(rules.cpus > 0)) return;
  const int64_t cap_nano = std::llround(rules.cpus * 1e9);
  const std::string ceiling = " above the job's ceiling of " + cpus_text(rules.cpus) + " CPUs; ask for at most that";
  int64_t nano = int_at(r, "NanoCpus", where), quota = int_at(r, "CpuQuota", where),
          period = int_at(r, "CpuPeriod", where);
  if (nano < 0 || nano > cap_nano) stop("cpu-limit", at(where, "NanoCpus") + " is" + ceiling);
  if (quota < 0) stop("cpu-limit", at(where, "CpuQuota") + " below zero means no CPU limit, which is" + ceiling);
  if (update && (quota != 0 || period != 0) && (quota <= 0 || period <= 0))
    stop("cpu-limit", at(where, "CpuQuota") + " and CpuPeriod must be set together under the job's CPU ceiling");
  const int64_t eff_period = period > 0 ? period : 100000;  // the kernel's default CFS period
  if (quota > 0 && static_cast<long double>(quota) > static_cast<long double>(rules.cpus) * eff_period)
    stop("cpu-limit", at(where, "CpuQuota") + "/CpuPeriod is" + ceiling);
  if (update || nano != 0 || quota != 0) return;
  // The daemon refuses NanoCpus beside a CpuPeriod, so a period alone gets
  // the matching quota.
  if (period > 0) r["CpuQuota"] = std::llround(rules.cpus * static_cast<double>(period));
  else r["NanoCpus"] = cap_nano;
}

// Resources: shared by create (HostConfig) and update (the body itself).
// On update, 0 and null mean "unchanged", so no ceiling is filled in.
void check_resources(json& r, std::string_view where, const JobRules& rules, bool update) {
  refuse_set(r, "CgroupParent", where, "cgroup-parent", "containers stay under the daemon's cgroup");
  refuse_set(r, "Devices", where, "devices", "host devices are not passed to containers");
  refuse_set(r, "DeviceCgroupRules", where, "device-cgroup-rules", "the default device rules hold");
  refuse_set(r, "DeviceRequests", where, "device-requests", "GPUs and other driver devices are not passed");
  for (auto k : {"BlkioWeightDevice", "BlkioDeviceReadBps", "BlkioDeviceWriteBps", "BlkioDeviceReadIOps",
                 "BlkioDeviceWriteIOps"})
    refuse_set(r, k, where, "blkio-devices", "per-device I/O settings name host devices; BlkioWeight is allowed");
  refuse_set(r, "OomKillDisable", where, "oom-kill-disable", "a container over its memory limit is killed");
  if (const json* u = get(r, "Ulimits")) check_ulimits_or_stop(*u, at(where, "Ulimits"));

  if (rules.memory_bytes > 0) {
    const int64_t cap = static_cast<int64_t>(
        std::min<uint64_t>(rules.memory_bytes, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    int64_t mem = int_at(r, "Memory", where);
    if (mem > cap)
      stop("memory-limit", at(where, "Memory") + " " + std::to_string(mem) + " is above the job's ceiling of " +
                               std::to_string(cap) + " bytes; ask for at most that");
    if (mem < 0 || (mem == 0 && !update)) r["Memory"] = cap;
  }
  if (rules.pids > 0) {
    const int64_t cap = static_cast<int64_t>(
        std::min<uint64_t>(rules.pids, static_cast<uint64_t>(std::numeric_limits<int64_t>::max())));
    std::optional<int64_t> p = opt_int_at(r, "PidsLimit", where);
    if (p && *p > cap)
      stop("pids-limit", at(where, "PidsLimit") + " " + std::to_string(*p) + " is above the job's ceiling of " +
                             std::to_string(cap) + "; ask for at most that");
    if (p ? *p <= 0 : !update) r["PidsLimit"] = cap;
  }
  cpu_limits(r, where, rules, update);
}

void check_port_bindings(const json& hc, const JobRules& rules) {
  const json* pb = object_at(hc, "PortBindings", "HostConfig");
  if (!pb) return;
  for (const auto& [port, list] : pb->items()) {
    std::string where = "HostConfig.PortBindings." + port;
    if (list.is_null()) continue;
    if (!list.is_array()) stop("json-type", where + " must be an array", 400);
    for (const auto& b : list) {
      keys(b, std::initializer_list<std::string_view>{"HostIp", "HostPort"}, where);
      if (!b.is_null() && !b.is_object()) stop("json-type", where + " must hold objects", 400);
      std::string hp = string_at(b, "HostPort", where);
      // nat.ParsePortRange: "N" or "N-M", decimal, 16 bits.
      auto parse = [&](std::string_view s) -> long {
        if (s.empty() || s.size() > 5 || s.find_first_not_of("0123456789") != std::string_view::npos) return -1;
        long v = std::stol(std::string(s));
        return v > 65535 ? -1 : v;
      };
      size_t dash = hp.find('-');
      long first = parse(std::string_view(hp).substr(0, dash));
      long last = dash == std::string::npos ? first : parse(std::string_view(hp).substr(dash + 1));
      bool ok = !hp.empty() && first > 0 && last >= first;
      if (ok) {
        ok = false;
        for (const auto& r : rules.ports) ok = ok || (first >= r.first && last <= r.last);
      }
      if (!ok) {
        std::string allowed;
        for (const auto& r : rules.ports)
          allowed += (allowed.empty() ? "" : ", ") + std::to_string(r.first) + "-" + std::to_string(r.last);
        stop("ports", where + " publishes host port " + (hp.empty() ? std::string("(any free one)") : hp) +
                          "; this job may publish only " +
                          (allowed.empty() ? std::string("no host ports") : "host ports " + allowed + ", named explicitly"));
      }
    }
  }
}

void check_binds(json& hc, const JobRules& rules, Ownership& own) {
  strings_at(hc, "Binds", "HostConfig");  // type check
  json* binds = hc.contains("Binds") ? &hc["Binds"] : nullptr;
  if (!binds || binds->is_null()) return;
  for (auto& e : *binds) {
    std::string spec = e.get<std::string>();
    std::string where = "HostConfig.Binds entry " + spec;
    std::vector<std::string> parts;
    for (size_t i = 0;;) {
      size_t j = spec.find(':', i);
      parts.push_back(spec.substr(i, j == std::string::npos ? std::string::npos : j - i));
      if (j == std::string::npos) break;
      i = j + 1;
    }
    if (parts.size() == 1) continue;  // an anonymous volume at that path
    if (parts.size() > 3 || parts[0].empty())
      stop("bind-mount", where + " is not source:destination[:options]");
    if (parts.size() == 3) {
      for (size_t i = 0; i <= parts[2].size();) {
        size_t j = parts[2].find(',', i);
        std::string o = parts[2].substr(i, j == std::string::npos ? std::string::npos : j - i);
        if (o == "shared" || o == "rshared" || o == "slave" || o == "rslave")
          stop("bind-propagation", where + " asks for " + o +
                                       " propagation, which carries mounts between the container and the host; "
                                       "private and rprivate are allowed");
        static const std::string_view ok[] = {"rw", "ro", "z", "Z", "nocopy", "private", "rprivate",
                                              "consistent", "cached", "delegated"};
        if (!in(ok, o))
          stop("bind-options", where + " has the option `" + o + "`; allowed: rw, ro, z, Z, nocopy, private, rprivate");
        if (j == std::string::npos) break;
        i = j + 1;
      }
    }
    if (parts[0][0] == '/') {
      parts[0] = bind_source(rules, parts[0], where);
      std::string joined;
      for (const auto& p : parts) joined += (joined.empty() ? "" : ":") + p;
      e = joined;
    } else {
      volume_source(own, parts[0], where);
    }
  }
}

void check_mounts(json& hc, const JobRules& rules, Ownership& own) {
  array_at(hc, "Mounts", "HostConfig");
  if (!get(hc, "Mounts")) return;
  for (auto& m : hc["Mounts"]) {
    const std::string where = "HostConfig.Mounts entry";
    if (!m.is_object()) stop("json-type", where + " must be an object", 400);
    keys(m, kMountKeys, where);
    std::string type = string_at(m, "Type", where), src = string_at(m, "Source", where);
    if (type == "bind") {
      if (const json* bo = object_at(m, "BindOptions", where)) {
        keys(*bo, std::initializer_list<std::string_view>{"Propagation", "NonRecursive"}, where + ".BindOptions");
        std::string p = string_at(*bo, "Propagation", where + ".BindOptions");
        if (!p.empty() && p != "private" && p != "rprivate")
          stop("bind-propagation", where + " asks for " + p + " propagation; private and rprivate are allowed");
      }
      if (!src.starts_with("/")) stop("bind-mount", where + " binds " + src + ", which is not an absolute path");
      m["Source"] = bind_source(rules, src, where);
    } else if (type == "volume") {
      if (const json* vo = object_at(m, "VolumeOptions", where)) {
        std::string w = where + ".VolumeOptions";
        keys(*vo, std::initializer_list<std::string_view>{"NoCopy", "Labels", "DriverConfig"}, w);
        if (const json* dc = object_at(*vo, "DriverConfig", w)) {
          keys(*dc, std::initializer_list<std::string_view>{"Name", "Options"}, w + ".DriverConfig");
          std::string d = string_at(*dc, "Name", w);
          if ((!d.empty() && d != "local") || !json_unset(get(*dc, "Options")))
            stop("volume-driver-opts", w + ".DriverConfig is refused: volume drivers and their options can mount "
                                           "host paths and devices; the local driver without options is allowed");
        }
      }
      // Labels a volume the daemon creates here (an anonymous one): marked
      // as the job's, it is removed with the job's other objects.
      owner_label_or_stop(m["VolumeOptions"]["Labels"], rules, where + ".VolumeOptions.Labels");
      if (!src.empty()) volume_source(own, src, where);
    } else if (type != "tmpfs") {
      stop("mount-type", where + " has Type " + (type.empty() ? std::string("\"\"") : type) +
                             "; bind (of a bind root), volume and tmpfs are allowed");
    }
  }
}

void check_host_config(json& hc, const JobRules& rules, Ownership& own) {
  const std::string w = "HostConfig";
  keys(hc, host_config_keys(), w);
  refuse_set(hc, "Privileged", w, "privileged", "a privileged container has the host's devices and every capability");
  refuse_set(hc, "CapAdd", w, "cap-add", "containers keep the default capabilities; CapDrop is allowed");
  for (const auto& s : strings_at(hc, "SecurityOpt", w))
    if (s != "no-new-privileges" && s != "no-new-privileges:true" && s != "no-new-privileges=true")
      stop("security-opt", "HostConfig.SecurityOpt `" + s + "` is refused: only no-new-privileges is allowed");
  for (auto [key, rule] : {std::pair{"MaskedPaths", "masked-paths"}, std::pair{"ReadonlyPaths", "readonly-paths"}})
    if (get(hc, key))
      stop(rule, "HostConfig." + std::string(key) +
                     " is refused: it replaces the daemon's list (an empty one unmasks /proc and /sys); leave it out");
  refuse_set(hc, "Runtime", w, "runtime", "containers use the daemon's default runtime");
  refuse_set(hc, "Annotations", w, "annotations", "runtime annotations are not passed");
  for (auto [key, rule] : {std::pair{"PidMode", "pid-mode"}, std::pair{"IpcMode", "ipc-mode"},
                           std::pair{"UTSMode", "uts-mode"}, std::pair{"UsernsMode", "userns-mode"},
                           std::pair{"CgroupnsMode", "cgroupns-mode"}})
    if (std::string v = string_at(hc, key, w); shares_namespace(v))
      stop(rule, "HostConfig." + std::string(key) + " " + v +
                     " is refused: it shares a namespace with the host or another container; leave it out");
  refuse_set(hc, "Cgroup", w, "cgroup", "containers get their own cgroup");
  refuse_set(hc, "StorageOpt", w, "storage-opt", "the storage driver's defaults hold");
  refuse_set(hc, "Sysctls", w, "sysctls", "kernel parameters are not set per container");
  refuse_set(hc, "VolumeDriver", w, "volume-driver", "only the local volume driver is used");
  refuse_set(hc, "Isolation", w, "isolation", "the default isolation holds");
  if (const json* lc = object_at(hc, "LogConfig", w)) {
    keys(*lc, std::initializer_list<std::string_view>{"Type", "Config"}, "HostConfig.LogConfig");
    if (std::string t = string_at(*lc, "Type", "HostConfig.LogConfig"); !t.empty())
      stop("log-driver", "HostConfig.LogConfig.Type " + t + " is refused: containers log with the daemon's default driver");
  }
  if (int_at(hc, "OomScoreAdj", w) < 0)
    stop("oom-score-adj", "HostConfig.OomScoreAdj below zero is refused: it would make the host's processes die "
                          "before the container's; zero or above is allowed");
  refuse_set(hc, "PublishAllPorts", w, "publish-all", "publish each port with an explicit host port instead");
  if (const json* rp = object_at(hc, "RestartPolicy", w))
    keys(*rp, std::initializer_list<std::string_view>{"Name", "MaximumRetryCount"}, "HostConfig.RestartPolicy");
  check_port_bindings(hc, rules);
  check_binds(hc, rules, own);
  check_mounts(hc, rules, own);
  if (auto v = strings_at(hc, "VolumesFrom", w); !v.empty())
    hc["VolumesFrom"] = owned_refs(own, v, "volumes-from", "HostConfig.VolumesFrom", false);
  if (auto l = strings_at(hc, "Links", w); !l.empty()) hc["Links"] = owned_refs(own, l, "links", "HostConfig.Links", true);
  std::string mode = string_at(hc, "NetworkMode", w);
  if (std::string to = network_name(mode, rules, own, "HostConfig.NetworkMode", true); to != mode) hc["NetworkMode"] = to;
  check_resources(hc, w, rules, false);
}

void check_networking(json& body, const JobRules& rules, Ownership& own) {
  const json* nc = object_at(body, "NetworkingConfig", "");
  if (!nc) return;
  keys(*nc, std::initializer_list<std::string_view>{"EndpointsConfig"}, "NetworkingConfig");
  const json* eps = object_at(*nc, "EndpointsConfig", "NetworkingConfig");
  if (!eps) return;
  // Keys become full ids, as NetworkMode did: the daemon pairs the two by
  // name, and the network checked must be the one it joins.
  json renamed = json::object();
  for (const auto& [name, ep] : eps->items()) {
    std::string w = "NetworkingConfig.EndpointsConfig." + name;
    renamed[network_name(name, rules, own, w, true)] = ep;
    if (ep.is_null()) continue;
    if (!ep.is_object()) stop("json-type", w + " must be an object", 400);
    keys(ep, kEndpointKeys, w);
    if (const json* ipam = object_at(ep, "IPAMConfig", w))
      keys(*ipam, std::initializer_list<std::string_view>{"IPv4Address", "IPv6Address", "LinkLocalIPs"}, w + ".IPAMConfig");
    refuse_set(ep, "DriverOpts", w, "endpoint-driver-opts", "endpoint driver options are not passed");
    if (std::string id = string_at(ep, "NetworkID", w); !id.empty()) network_name(id, rules, own, w + ".NetworkID", false);
    for (const auto& l : strings_at(ep, "Links", w)) {
      std::string n = l.substr(0, l.find(':'));
      container_ref(own, n.starts_with("/") ? n.substr(1) : n, "links", w + ".Links");
    }
  }
  body["NetworkingConfig"]["EndpointsConfig"] = std::move(renamed);
}

template <typename F>
Checked<nlohmann::json> guarded(F&& f) {
  try {
    return f();
  } catch (const Stop& s) {
    return s.r;
  } catch (const nlohmann::json::exception& e) {
    // Only a shape the checks did not foresee gets here.
    return refuse("json-type", std::string("the body has an unexpected shape: ") + e.what(), 400);
  }
}

void need_object(const json& body, std::string_view what) {
  if (!body.is_object()) stop("json-type", std::string(what) + " takes a JSON object", 400);
}

}  // namespace

// Go's path.Clean for an absolute path: the daemon cleans bind sources the
// same way before it mounts them.
std::string clean_abs(std::string_view p) {
  std::vector<std::string_view> parts;
  size_t i = 0;
  while (i <= p.size()) {
    size_t j = p.find('/', i);
    if (j == std::string_view::npos) j = p.size();
    std::string_view seg = p.substr(i, j - i);
    if (seg == "..") {
      if (!parts.empty()) parts.pop_back();
    } else if (!seg.empty() && seg != ".") {
      parts.push_back(seg);
    }
    i = j + 1;
  }
  std::string out;
  for (auto s : parts) out += "/" + std::string(s);
  return out.empty() ? "/" : out;
}

Checked<nlohmann::json> check_container_create(nlohmann::json body, const JobRules& rules, Ownership& own) {
  return guarded([&]() -> json {
    need_object(body, "container create");
    // Engines before 1.44 read HostConfig fields at the top level too (the
    // whole set, when HostConfig is absent), where a check of HostConfig
    // alone would never look.
    for (const auto& [k, v] : body.items()) {
      if (in(kConfigKeys, k) || k == "HostConfig" || k == "NetworkingConfig") continue;
      for (auto h : host_config_keys())
        if (iequals_ascii(h, k))
          stop("top-level-hostconfig", k + " is a HostConfig field written at the top level of the body, where "
                                           "the daemon also reads it; put it inside HostConfig");
      keys(json::object({{k, nullptr}}), kConfigKeys, "");
    }
    if (const json* hc = get(body, "Healthcheck"))
      keys(*hc, std::initializer_list<std::string_view>{"Test", "Interval", "Timeout", "Retries", "StartPeriod"},
           "Healthcheck");
    std::string image = string_at(body, "Image", "");
    if (image.empty() || !own.image_usable(image))
      stop("image", "the image `" + image +
                        "` is neither one of this job's images nor allowed by the profile's docker.proxy.images");
    owner_label_or_stop(body["Labels"], rules, "Labels");
    if (!get(body, "HostConfig")) body["HostConfig"] = json::object();
    object_at(body, "HostConfig", "");
    check_host_config(body["HostConfig"], rules, own);
    check_networking(body, rules, own);
    return body;
  });
}

Checked<nlohmann::json> check_container_update(nlohmann::json body, const JobRules& rules) {
  return guarded([&]() -> json {
    need_object(body, "container update");
    std::vector<std::string_view> known(std::begin(kResourceKeys), std::end(kResourceKeys));
    known.push_back("RestartPolicy");
    keys(body, known, "");
    if (const json* rp = object_at(body, "RestartPolicy", ""))
      keys(*rp, std::initializer_list<std::string_view>{"Name", "MaximumRetryCount"}, "RestartPolicy");
    check_resources(body, "", rules, true);
    return body;
  });
}

Checked<nlohmann::json> check_exec_create(nlohmann::json body) {
  return guarded([&]() -> json {
    need_object(body, "exec create");
    keys(body, kExecKeys, "");
    refuse_set(body, "Privileged", "", "privileged-exec",
               "a privileged exec has every capability; run the command without it");
    return body;
  });
}

Checked<nlohmann::json> check_network_create(nlohmann::json body, const JobRules& rules) {
  return guarded([&]() -> json {
    need_object(body, "network create");
    keys(body, kNetworkKeys, "");
    if (std::string d = string_at(body, "Driver", ""); !d.empty() && d != "bridge")
      stop("network-driver", "the network driver " + d + " is refused; bridge is allowed");
    refuse_set(body, "Options", "", "network-options",
               "driver options can reuse or reconfigure the host's bridges (com.docker.network.bridge.name)");
    refuse_set(body, "Ingress", "", "network-ingress", "ingress networks belong to swarm mode");
    refuse_set(body, "ConfigOnly", "", "network-config-only", "configuration-only networks are not created");
    refuse_set(body, "ConfigFrom", "", "network-config-from", "a network takes no other network's configuration");
    if (const json* ipam = object_at(body, "IPAM", "")) {
      keys(*ipam, std::initializer_list<std::string_view>{"Driver", "Config", "Options"}, "IPAM");
      if (std::string d = string_at(*ipam, "Driver", "IPAM"); !d.empty() && d != "default")
        stop("network-ipam-driver", "the IPAM driver " + d + " is refused; default is allowed");
      refuse_set(*ipam, "Options", "IPAM", "network-ipam-options", "IPAM driver options are not passed");
      refuse_set(*ipam, "Config", "IPAM", "network-ipam-config",
                 "a chosen subnet becomes a host route through the new bridge and can cut the host off its own "
                 "networks; leave it out and the daemon picks a free one");
    }
    if (rules.network_none) body["Internal"] = true;
    owner_label_or_stop(body["Labels"], rules, "Labels");
    return body;
  });
}

Checked<nlohmann::json> check_volume_create(nlohmann::json body, const JobRules& rules) {
  return guarded([&]() -> json {
    need_object(body, "volume create");
    keys(body, kVolumeKeys, "");
    if (std::string d = string_at(body, "Driver", ""); !d.empty() && d != "local")
      stop("volume-driver", "the volume driver " + d + " is refused; local is allowed");
    refuse_set(body, "DriverOpts", "", "volume-driver-opts",
               "the local driver's type, device and o options mount host devices and paths; a plain local volume "
               "is allowed");
    refuse_set(body, "ClusterVolumeSpec", "", "volume-cluster", "cluster volumes belong to swarm mode");
    owner_label_or_stop(body["Labels"], rules, "Labels");
    return body;
  });
}

Checked<Ok> check_ulimits(const nlohmann::json& list, std::string_view where) {
  try {
    check_ulimits_or_stop(list, where);
    return Ok{};
  } catch (const Stop& s) {
    return s.r;
  }
}

Checked<Ok> add_owner_label(nlohmann::json& labels, const JobRules& rules, std::string_view where) {
  try {
    owner_label_or_stop(labels, rules, where);
    return Ok{};
  } catch (const Stop& s) {
    return s.r;
  }
}

}  // namespace gh::docker
