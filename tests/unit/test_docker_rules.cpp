// The Docker proxy's body checks: container create and update, exec,
// network and volume create. Each rule is asserted by its exact name (the
// audit log and the job's error message carry it), and the bodies the
// Docker 20.10 CLI really sends must pass, rewritten where the job's
// rules say so.
#include <doctest/doctest.h>

#include <set>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

#include "docker/container_rules.hpp"
#include "docker/strict_json.hpp"

using gh::docker::BindRoot;
using gh::docker::JobRules;
using gh::docker::kOwnerLabel;
using nlohmann::json;

namespace {

// `docker run --rm --network none -v /tmp/dk/rootfs:/r gh-busybox echo hi`, as sent by the 20.10 CLI.
const char* kCliCreate = R"({"Hostname":"","Domainname":"","User":"","AttachStdin":false,"AttachStdout":true,"AttachStderr":true,"Tty":false,"OpenStdin":false,"StdinOnce":false,"Env":null,"Cmd":["echo","hi"],"Image":"gh-busybox","Volumes":{},"WorkingDir":"","Entrypoint":null,"OnBuild":null,"Labels":{},"HostConfig":{"Binds":["/tmp/dk/rootfs:/r"],"ContainerIDFile":"","LogConfig":{"Type":"","Config":{}},"NetworkMode":"none","PortBindings":{},"RestartPolicy":{"Name":"no","MaximumRetryCount":0},"AutoRemove":true,"VolumeDriver":"","VolumesFrom":null,"CapAdd":null,"CapDrop":null,"CgroupnsMode":"","Dns":[],"DnsOptions":[],"DnsSearch":[],"ExtraHosts":null,"GroupAdd":null,"IpcMode":"","Cgroup":"","Links":null,"OomScoreAdj":0,"PidMode":"","Privileged":false,"PublishAllPorts":false,"ReadonlyRootfs":false,"SecurityOpt":null,"UTSMode":"","UsernsMode":"","ShmSize":0,"ConsoleSize":[0,0],"Isolation":"","CpuShares":0,"Memory":0,"NanoCpus":0,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":[],"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":[],"DeviceCgroupRules":null,"DeviceRequests":null,"KernelMemory":0,"KernelMemoryTCP":0,"MemoryReservation":0,"MemorySwap":0,"MemorySwappiness":-1,"OomKillDisable":false,"PidsLimit":0,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"MaskedPaths":null,"ReadonlyPaths":null},"NetworkingConfig":{"EndpointsConfig":{}}})";
// `docker update --memory 64m --memory-swap 128m --pids-limit 50 --cpus 0.5 c`.
const char* kCliUpdate = R"({"CpuShares":0,"Memory":67108864,"NanoCpus":500000000,"CgroupParent":"","BlkioWeight":0,"BlkioWeightDevice":null,"BlkioDeviceReadBps":null,"BlkioDeviceWriteBps":null,"BlkioDeviceReadIOps":null,"BlkioDeviceWriteIOps":null,"CpuPeriod":0,"CpuQuota":0,"CpuRealtimePeriod":0,"CpuRealtimeRuntime":0,"CpusetCpus":"","CpusetMems":"","Devices":null,"DeviceCgroupRules":null,"DeviceRequests":null,"MemoryReservation":0,"MemorySwap":134217728,"MemorySwappiness":null,"OomKillDisable":null,"PidsLimit":50,"Ulimits":null,"CpuCount":0,"CpuPercent":0,"IOMaximumIOps":0,"IOMaximumBandwidth":0,"RestartPolicy":{"Name":"","MaximumRetryCount":0}})";
// `docker exec -e A=1 -w / c echo hi`.
const char* kCliExec = R"({"User":"","Privileged":false,"Tty":false,"AttachStdin":false,"AttachStderr":true,"AttachStdout":true,"Detach":false,"DetachKeys":"","Env":["A=1"],"WorkingDir":"/","Cmd":["echo","hi"]})";
// `docker network create --label a=b n`.
const char* kCliNetwork = R"({"Driver":"bridge","Scope":"","IPAM":{"Driver":"default","Options":{},"Config":[]},"Internal":false,"Attachable":false,"Ingress":false,"ConfigOnly":false,"ConfigFrom":null,"Options":{},"Labels":{"a":"b"},"Name":"h2net","CheckDuplicate":true})";
// `docker volume create --label a=b v`.
const char* kCliVolume = R"({"Driver":"local","Labels":{"a":"b"},"Name":"h2vol"})";

constexpr uint64_t kGiB = 1ull << 30;

JobRules rules() {
  JobRules r;
  r.job_id = "job-1";
  r.bind_roots = {BindRoot{"/tmp/dk/rootfs", "/host/x"}};
  r.ports = {{8000, 8099}};
  r.memory_bytes = kGiB;
  r.pids = 512;
  r.cpus = 2;
  r.network_none = true;
  return r;
}

struct FakeOwnership : gh::docker::Ownership {
  std::set<std::string> containers{"mine"}, networks{"jobnet"}, volumes{"jobvol"}, images{"gh-busybox"};
  bool container_owned(const std::string& n) override { return containers.count(n) > 0; }
  bool network_owned(const std::string& n) override { return networks.count(n) > 0; }
  bool volume_owned(const std::string& n) override { return volumes.count(n) > 0; }
  bool image_usable(const std::string& r) override { return images.count(r) > 0; }
};

json parsed(const char* text) {
  auto j = gh::docker::parse_strict(text);
  REQUIRE(j);
  return *j;
}

gh::docker::Checked<json> create(json body, const JobRules& r = rules()) {
  FakeOwnership own;
  return gh::docker::check_container_create(std::move(body), r, own);
}

std::string rule_of(const gh::docker::Checked<json>& c) { return c ? "" : c.error().rule; }
std::string create_rule(json body, const JobRules& r = rules()) { return rule_of(create(std::move(body), r)); }

// The CLI's body with one HostConfig field set.
std::string hc_rule(const char* key, json value, const JobRules& r = rules()) {
  json b = parsed(kCliCreate);
  b["HostConfig"][key] = std::move(value);
  return create_rule(std::move(b), r);
}

json hc_accepted(const char* key, json value, const JobRules& r = rules()) {
  json b = parsed(kCliCreate);
  b["HostConfig"][key] = std::move(value);
  auto c = create(std::move(b), r);
  INFO(key << ": " << (c ? std::string() : c.error().message));
  REQUIRE(c);
  return (*c)["HostConfig"];
}

}  // namespace

TEST_CASE("container create: the CLI's body passes, bind rewritten, limits and owner label added") {
  auto c = create(parsed(kCliCreate));
  REQUIRE(c);
  const json& hc = (*c)["HostConfig"];
  CHECK(hc["Binds"] == json::array({"/host/x:/r"}));
  CHECK(hc["NetworkMode"] == "none");
  CHECK(hc["Memory"] == kGiB);
  CHECK(hc["PidsLimit"] == 512);
  CHECK(hc["NanoCpus"] == 2000000000);
  CHECK((*c)["Labels"][kOwnerLabel] == "job-1");
  CHECK((*c)["Cmd"] == json::array({"echo", "hi"}));
}

TEST_CASE("container create: HostConfig missing gets one with the job's limits") {
  auto c = create(json{{"Image", "gh-busybox"}, {"Labels", {{"a", "b"}}}});
  REQUIRE(c);
  CHECK((*c)["HostConfig"]["Memory"] == kGiB);
  CHECK((*c)["HostConfig"]["PidsLimit"] == 512);
  CHECK((*c)["HostConfig"]["NanoCpus"] == 2000000000);
  CHECK((*c)["HostConfig"]["NetworkMode"] == "none");
  CHECK((*c)["Labels"] == json{{"a", "b"}, {kOwnerLabel, "job-1"}});
  JobRules open = rules();
  open.memory_bytes = open.pids = 0;
  open.cpus = 0;
  open.network_none = false;
  auto u = create(json{{"Image", "gh-busybox"}}, open);
  REQUIRE(u);
  CHECK((*u)["HostConfig"] == json::object());
}

TEST_CASE("container create: top-level-hostconfig") {
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","Privileged":true})")) == "top-level-hostconfig");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","privileged":true})")) == "top-level-hostconfig");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","Binds":["/:/h"],"HostConfig":{}})")) == "top-level-hostconfig");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","Memory":0})")) == "top-level-hostconfig");
}

TEST_CASE("container create: unknown-key, case variants included") {
  CHECK(hc_rule("privileged", true) == "unknown-key");
  CHECK(hc_rule("PRIVILEGED", true) == "unknown-key");
  CHECK(hc_rule("Capadd", json::array({"ALL"})) == "unknown-key");
  CHECK(hc_rule("DeviceCgroupPermissions", json::array()) == "unknown-key");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","Cpuset":"0"})")) == "unknown-key");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","hostconfig":{"Privileged":true}})")) == "unknown-key");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","Healthcheck":{"test":["CMD"]}})")) == "unknown-key");
  CHECK(create_rule(parsed(R"({"Image":"gh-busybox","NetworkingConfig":{"endpointsConfig":{}}})")) == "unknown-key");
  CHECK(hc_rule("Mounts", json::parse(R"([{"Type":"tmpfs","Target":"/t","tmpfsoptions":{}}])")) == "unknown-key");
  CHECK(hc_rule("LogConfig", json::parse(R"({"type":"syslog"})")) == "unknown-key");
  CHECK(hc_rule("PortBindings", json::parse(R"({"80/tcp":[{"hostport":"8080"}]})")) == "unknown-key");
  auto c = create(parsed(R"({"Image":"gh-busybox","HostConfig":{"privileged":true}})"));
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("HostConfig.privileged is not a key the proxy knows") == 0);
}

TEST_CASE("container create: one rule per refused HostConfig feature") {
  const std::vector<std::tuple<const char*, json, const char*>> cases = {
      {"Privileged", true, "privileged"},
      {"CapAdd", json::array({"SYS_ADMIN"}), "cap-add"},
      {"CapAdd", "SYS_ADMIN", "cap-add"},  // a StrSlice takes a bare string
      {"SecurityOpt", json::array({"seccomp=unconfined"}), "security-opt"},
      {"SecurityOpt", json::array({"no-new-privileges", "apparmor=unconfined"}), "security-opt"},
      {"MaskedPaths", json::array(), "masked-paths"},
      {"MaskedPaths", json::array({"/proc/kcore"}), "masked-paths"},
      {"ReadonlyPaths", json::array(), "readonly-paths"},
      {"Runtime", "runc-debug", "runtime"},
      {"Annotations", json{{"a", "b"}}, "annotations"},
      {"NetworkMode", "host", "network-mode"},
      {"NetworkMode", "container:mine", "network-mode"},
      {"PidMode", "host", "pid-mode"},
      {"PidMode", "container:mine", "pid-mode"},
      {"IpcMode", "host", "ipc-mode"},
      {"IpcMode", "container:x", "ipc-mode"},
      {"UTSMode", "host", "uts-mode"},
      {"UsernsMode", "host", "userns-mode"},
      {"CgroupnsMode", "host", "cgroupns-mode"},
      {"Cgroup", "container:mine", "cgroup"},
      {"CgroupParent", "/system.slice", "cgroup-parent"},
      {"Devices", json::parse(R"([{"PathOnHost":"/dev/sda","PathInContainer":"/dev/sda","CgroupPermissions":"rwm"}])"), "devices"},
      {"DeviceCgroupRules", json::array({"a *:* rwm"}), "device-cgroup-rules"},
      {"DeviceRequests", json::parse(R"([{"Count":-1,"Capabilities":[["gpu"]]}])"), "device-requests"},
      {"BlkioWeightDevice", json::parse(R"([{"Path":"/dev/sda","Weight":10}])"), "blkio-devices"},
      {"BlkioDeviceReadBps", json::parse(R"([{"Path":"/dev/sda","Rate":1}])"), "blkio-devices"},
      {"BlkioDeviceWriteIOps", json::parse(R"([{"Path":"/dev/sda","Rate":1}])"), "blkio-devices"},
      {"StorageOpt", json{{"size", "1T"}}, "storage-opt"},
      {"Sysctls", json{{"net.ipv4.ip_forward", "1"}}, "sysctls"},
      {"VolumeDriver", "nfs", "volume-driver"},
      {"Isolation", "hyperv", "isolation"},
      {"LogConfig", json{{"Type", "syslog"}, {"Config", {{"syslog-address", "udp://1.2.3.4:514"}}}}, "log-driver"},
      {"OomKillDisable", true, "oom-kill-disable"},
      {"OomScoreAdj", -500, "oom-score-adj"},
      {"PublishAllPorts", true, "publish-all"},
      {"Ulimits", json::parse(R"([{"Name":"rtprio","Soft":99,"Hard":99}])"), "ulimits"},
      {"Ulimits", json::parse(R"([{"Name":"RTPRIO","Soft":0,"Hard":1}])"), "ulimits"},
      {"Memory", "1g", "json-type"},
      {"Binds", "/tmp/dk/rootfs:/r", "json-type"},
      {"NetworkMode", 1, "json-type"},
  };
  for (const auto& [key, value, rule] : cases) {
    INFO(key << " = " << value.dump());
    CHECK(hc_rule(key, value) == rule);
  }
}

TEST_CASE("container create: what is not asking passes") {
  hc_accepted("Privileged", false);
  hc_accepted("CapAdd", json::array());
  hc_accepted("CapDrop", json::array({"ALL"}));
  hc_accepted("SecurityOpt", json::array({"no-new-privileges", "no-new-privileges:true", "no-new-privileges=true"}));
  hc_accepted("MaskedPaths", nullptr);
  hc_accepted("IpcMode", "shareable");
  hc_accepted("CgroupnsMode", "private");
  hc_accepted("OomScoreAdj", 500);
  hc_accepted("Ulimits", json::parse(R"([{"Name":"nofile","Soft":1024,"Hard":4096}])"));
  hc_accepted("Tmpfs", json{{"/run", "rw,size=64m"}});
  hc_accepted("OomKillDisable", nullptr);
  hc_accepted("LogConfig", json{{"Type", ""}, {"Config", {{"max-size", "10m"}}}});
}

TEST_CASE("container create: ports") {
  auto pb = [](const char* host_port) { return json{{"80/tcp", json::array({{{"HostIp", ""}, {"HostPort", host_port}}})}}; };
  CHECK(hc_rule("PortBindings", pb("")) == "ports");  // a random host port
  CHECK(hc_rule("PortBindings", pb("0")) == "ports");
  CHECK(hc_rule("PortBindings", pb("9000")) == "ports");
  CHECK(hc_rule("PortBindings", pb("8090-8100")) == "ports");
  CHECK(hc_rule("PortBindings", pb("+8080")) == "ports");
  CHECK(hc_rule("PortBindings", json{{"80/tcp", json::array({nullptr})}}) == "ports");
  hc_accepted("PortBindings", pb("8080"));
  hc_accepted("PortBindings", pb("8000-8010"));
  hc_accepted("PortBindings", json{{"80/tcp", nullptr}});
  JobRules none = rules();
  none.ports.clear();
  CHECK(hc_rule("PortBindings", pb("8080"), none) == "ports");
}

TEST_CASE("container create: binds") {
  CHECK(hc_accepted("Binds", json::array({"/tmp/dk/rootfs:/r:ro"}))["Binds"] == json::array({"/host/x:/r:ro"}));
  CHECK(hc_accepted("Binds", json::array({"/tmp/dk/rootfs/:/r"}))["Binds"] == json::array({"/host/x:/r"}));
  CHECK(hc_accepted("Binds", json::array({"/tmp/dk/./rootfs:/r:rw,rprivate"}))["Binds"] ==
        json::array({"/host/x:/r:rw,rprivate"}));
  CHECK(hc_accepted("Binds", json::array({"/data"}))["Binds"] == json::array({"/data"}));  // anonymous volume
  CHECK(hc_accepted("Binds", json::array({"jobvol:/v:ro"}))["Binds"] == json::array({"jobvol:/v:ro"}));
  CHECK(hc_rule("Binds", json::array({"/tmp/dk/rootfs/sub:/r"})) == "bind-mount");
  CHECK(hc_rule("Binds", json::array({"/etc:/e"})) == "bind-mount");
  CHECK(hc_rule("Binds", json::array({"/:/h"})) == "bind-mount");
  CHECK(hc_rule("Binds", json::array({"/tmp/dk/rootfs:/r:ro:x"})) == "bind-mount");
  CHECK(hc_rule("Binds", json::array({"/tmp/dk/rootfs:/r:rshared"})) == "bind-propagation");
  CHECK(hc_rule("Binds", json::array({"/tmp/dk/rootfs:/r:ro,slave"})) == "bind-propagation");
  CHECK(hc_rule("Binds", json::array({"/tmp/dk/rootfs:/r:exec"})) == "bind-options");
  CHECK(hc_rule("Binds", json::array({"othervol:/v"})) == "volume-not-owned");
  auto c = create([] {
    json b = parsed(kCliCreate);
    b["HostConfig"]["Binds"] = json::array({"/tmp/dk/rootfs/sub:/r"});
    return b;
  }());
  REQUIRE_FALSE(c);
  CHECK(c.error().message.find("-w") != std::string::npos);
}

TEST_CASE("container create: mounts") {
  auto m = [](const char* text) { return json::array({json::parse(text)}); };
  auto hc = hc_accepted("Mounts", m(R"({"Type":"bind","Source":"/tmp/dk/rootfs","Target":"/r","BindOptions":{"Propagation":"rprivate"}})"));
  CHECK(hc["Mounts"][0]["Source"] == "/host/x");
  hc = hc_accepted("Mounts", m(R"({"Type":"volume","Target":"/v"})"));
  CHECK(hc["Mounts"][0]["VolumeOptions"]["Labels"][kOwnerLabel] == "job-1");
  hc_accepted("Mounts", m(R"({"Type":"volume","Source":"jobvol","Target":"/v","VolumeOptions":{"NoCopy":true}})"));
  hc_accepted("Mounts", m(R"({"Type":"tmpfs","Target":"/t","TmpfsOptions":{"SizeBytes":1000}})"));
  CHECK(hc_rule("Mounts", m(R"({"Type":"bind","Source":"/tmp/dk/rootfs/sub","Target":"/r"})")) == "bind-mount");
  CHECK(hc_rule("Mounts", m(R"({"Type":"bind","Source":"rel","Target":"/r"})")) == "bind-mount");
  CHECK(hc_rule("Mounts", m(R"({"Type":"bind","Source":"/tmp/dk/rootfs","Target":"/r","BindOptions":{"Propagation":"rshared"}})")) == "bind-propagation");
  CHECK(hc_rule("Mounts", m(R"({"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"local","Options":{"type":"none","o":"bind","device":"/etc"}}}})")) == "volume-driver-opts");
  CHECK(hc_rule("Mounts", m(R"({"Type":"volume","Target":"/v","VolumeOptions":{"DriverConfig":{"Name":"nfs"}}})")) == "volume-driver-opts");
  CHECK(hc_rule("Mounts", m(R"({"Type":"volume","Source":"othervol","Target":"/v"})")) == "volume-not-owned");
  CHECK(hc_rule("Mounts", m(R"({"Type":"volume","Target":"/v","VolumeOptions":{"Labels":{"org.gatehouse.job":"job-2"}}})")) == "owner-label");
  CHECK(hc_rule("Mounts", m(R"({"Type":"npipe","Source":"x","Target":"/p"})")) == "mount-type");
  CHECK(hc_rule("Mounts", m(R"({"Type":"BIND","Source":"/tmp/dk/rootfs","Target":"/p"})")) == "mount-type");
  CHECK(hc_rule("Mounts", m(R"({"Source":"/etc","Target":"/p"})")) == "mount-type");
}

TEST_CASE("container create: volumes-from and links") {
  hc_accepted("VolumesFrom", json::array({"mine:ro"}));
  CHECK(hc_rule("VolumesFrom", json::array({"other:ro"})) == "volumes-from");
  CHECK(hc_rule("VolumesFrom", json::array({"other"})) == "volumes-from");
  hc_accepted("Links", json::array({"mine:alias"}));
  hc_accepted("Links", json::array({"/mine:/c/alias"}));
  CHECK(hc_rule("Links", json::array({"other:alias"})) == "links");
}

TEST_CASE("container create: networks") {
  CHECK(hc_accepted("NetworkMode", "")["NetworkMode"] == "none");
  CHECK(hc_accepted("NetworkMode", "default")["NetworkMode"] == "none");
  CHECK(hc_rule("NetworkMode", "bridge") == "network-mode");
  CHECK(hc_accepted("NetworkMode", "jobnet")["NetworkMode"] == "jobnet");
  CHECK(hc_rule("NetworkMode", "othernet") == "network-not-owned");
  CHECK(hc_rule("NetworkMode", "Host") == "network-not-owned");  // not "host" to the daemon: a network name
  JobRules open = rules();
  open.network_none = false;
  CHECK(hc_accepted("NetworkMode", "bridge", open)["NetworkMode"] == "bridge");
  CHECK(hc_accepted("NetworkMode", "", open)["NetworkMode"] == "");
  CHECK(hc_rule("NetworkMode", "host", open) == "network-mode");

  auto with_eps = [](const char* eps) {
    json b = parsed(kCliCreate);
    b["NetworkingConfig"]["EndpointsConfig"] = json::parse(eps);
    return create_rule(b);
  };
  CHECK(with_eps(R"({"jobnet":{"Aliases":["a"],"IPAMConfig":{"IPv4Address":""}}})") == "");
  CHECK(with_eps(R"({"othernet":{}})") == "network-not-owned");
  CHECK(with_eps(R"({"bridge":{}})") == "network-mode");
  CHECK(with_eps(R"({"host":null})") == "network-mode");
  CHECK(with_eps(R"({"jobnet":{"NetworkID":"othernet"}})") == "network-not-owned");
  CHECK(with_eps(R"({"jobnet":{"Links":["other:x"]}})") == "links");
  CHECK(with_eps(R"({"jobnet":{"DriverOpts":{"com.docker.network.endpoint.sysctls":"x"}}})") == "endpoint-driver-opts");
  CHECK(with_eps(R"({"jobnet":{"aliases":[]}})") == "unknown-key");
}

TEST_CASE("container create: image") {
  json b = parsed(kCliCreate);
  b["Image"] = "evil";
  CHECK(create_rule(b) == "image");
  b.erase("Image");
  CHECK(create_rule(b) == "image");
  b["Image"] = 5;
  CHECK(create_rule(b) == "json-type");
}

TEST_CASE("container create: memory-limit, pids-limit, cpu-limit") {
  CHECK(hc_rule("Memory", 2 * kGiB) == "memory-limit");
  CHECK(hc_accepted("Memory", 100 << 20)["Memory"] == 100 << 20);
  CHECK(hc_accepted("Memory", -1)["Memory"] == kGiB);
  CHECK(hc_rule("PidsLimit", 10000) == "pids-limit");
  CHECK(hc_accepted("PidsLimit", 100)["PidsLimit"] == 100);
  CHECK(hc_accepted("PidsLimit", -1)["PidsLimit"] == 512);
  CHECK(hc_accepted("PidsLimit", nullptr)["PidsLimit"] == 512);
  CHECK(hc_rule("NanoCpus", 3000000000) == "cpu-limit");
  CHECK(hc_rule("NanoCpus", -1) == "cpu-limit");
  CHECK(hc_accepted("NanoCpus", 1500000000)["NanoCpus"] == 1500000000);
  CHECK(hc_rule("CpuQuota", 300000) == "cpu-limit");  // 3 CPUs at the default period
  CHECK(hc_rule("CpuQuota", -1) == "cpu-limit");      // unlimited
  {
    json b = parsed(kCliCreate);
    b["HostConfig"]["CpuQuota"] = 50000;
    b["HostConfig"]["CpuPeriod"] = 10000;  // 5 CPUs
    CHECK(create_rule(b) == "cpu-limit");
    b["HostConfig"]["CpuPeriod"] = 50000;  // 1 CPU
    auto c = create(b);
    REQUIRE(c);
    CHECK((*c)["HostConfig"]["NanoCpus"] == 0);
  }
  auto hc = hc_accepted("CpuPeriod", 50000);  // a period alone gets the matching quota, not NanoCpus
  CHECK(hc["CpuQuota"] == 100000);
  CHECK(hc["NanoCpus"] == 0);
  CHECK(hc_rule("PidsLimit", 1.5) == "json-type");
  CHECK(hc_rule("Memory", 18446744073709551615ull) == "json-type");
}

TEST_CASE("container create: owner-label") {
  json b = parsed(kCliCreate);
  b["Labels"] = {{kOwnerLabel, "job-2"}};
  auto c = create(b);
  REQUIRE_FALSE(c);
  CHECK(c.error().rule == "owner-label");
  b["Labels"] = {{kOwnerLabel, "job-1"}};
  CHECK(create_rule(b) == "");
  b["Labels"] = {{"a", 1}};
  CHECK(create_rule(b) == "json-type");
}

TEST_CASE("container update") {
  auto up = [](json body) { return gh::docker::check_container_update(std::move(body), rules()); };
  auto c = up(parsed(kCliUpdate));
  REQUIRE(c);
  CHECK((*c)["Memory"] == 67108864);
  CHECK((*c)["PidsLimit"] == 50);
  CHECK((*c)["NanoCpus"] == 500000000);
  auto bare = up(json{{"CpuShares", 512}});
  REQUIRE(bare);
  CHECK(*bare == json{{"CpuShares", 512}});  // 0 and absent mean "unchanged": nothing filled in
  CHECK(rule_of(up(json{{"Privileged", true}})) == "unknown-key");
  CHECK(rule_of(up(json{{"memory", 1}})) == "unknown-key");
  CHECK(rule_of(up(json{{"CgroupParent", "/"}})) == "cgroup-parent");
  CHECK(rule_of(up(json{{"Devices", json::array({{{"PathOnHost", "/dev/mem"}}})}})) == "devices");
  CHECK(rule_of(up(json{{"OomKillDisable", true}})) == "oom-kill-disable");
  CHECK(rule_of(up(json{{"Memory", 2 * kGiB}})) == "memory-limit");
  CHECK((*up(json{{"Memory", -1}}))["Memory"] == kGiB);
  CHECK((*up(json{{"PidsLimit", 0}}))["PidsLimit"] == 512);
  CHECK(rule_of(up(json{{"PidsLimit", 513}})) == "pids-limit");
  CHECK(rule_of(up(json{{"CpuQuota", 100000}})) == "cpu-limit");  // the container's period is unknown
  CHECK(rule_of(up(json{{"CpuPeriod", 1000}})) == "cpu-limit");
  CHECK(rule_of(up(json{{"CpuQuota", 100000}, {"CpuPeriod", 100000}})) == "");
  CHECK(rule_of(up(json{{"CpuQuota", 300000}, {"CpuPeriod", 100000}})) == "cpu-limit");
  CHECK(rule_of(up(json{{"Ulimits", json::parse(R"([{"Name":"rtprio","Hard":1,"Soft":1}])")}})) == "ulimits");
  CHECK(rule_of(up(json{{"RestartPolicy", {{"name", "always"}}}})) == "unknown-key");
}

TEST_CASE("exec create") {
  auto c = gh::docker::check_exec_create(parsed(kCliExec));
  REQUIRE(c);
  CHECK(*c == parsed(kCliExec));
  CHECK(rule_of(gh::docker::check_exec_create(json{{"Cmd", {"sh"}}, {"Privileged", true}})) == "privileged-exec");
  CHECK(rule_of(gh::docker::check_exec_create(json{{"Cmd", {"sh"}}, {"privileged", true}})) == "unknown-key");
  CHECK(rule_of(gh::docker::check_exec_create(json::array())) == "json-type");
}

TEST_CASE("network create") {
  auto net = [](json body, JobRules r = rules()) { return gh::docker::check_network_create(std::move(body), r); };
  auto c = net(parsed(kCliNetwork));
  REQUIRE(c);
  CHECK((*c)["Internal"] == true);  // the job has no network; neither do its networks
  CHECK((*c)["Labels"] == json{{"a", "b"}, {kOwnerLabel, "job-1"}});
  JobRules open = rules();
  open.network_none = false;
  CHECK((*net(parsed(kCliNetwork), open))["Internal"] == false);
  auto with = [&](const char* key, json v) {
    json b = parsed(kCliNetwork);
    b[key] = std::move(v);
    return rule_of(net(b));
  };
  CHECK(with("Driver", "macvlan") == "network-driver");
  CHECK(with("Driver", "host") == "network-driver");
  CHECK(with("Options", json{{"com.docker.network.bridge.name", "docker0"}}) == "network-options");
  CHECK(with("Ingress", true) == "network-ingress");
  CHECK(with("ConfigOnly", true) == "network-config-only");
  CHECK(with("ConfigFrom", json{{"Network", "x"}}) == "network-config-from");
  CHECK(with("IPAM", json{{"Driver", "dhcp"}}) == "network-ipam-driver");
  CHECK(with("IPAM", json{{"Options", {{"a", "b"}}}}) == "network-ipam-options");
  CHECK(with("IPAM", json::parse(R"({"Config":[{"Subnet":"10.0.0.0/8"}]})")) == "network-ipam-config");
  CHECK(with("IPAM", json::parse(R"({"driver":"default"})")) == "unknown-key");
  CHECK(with("Labels", json{{kOwnerLabel, "job-2"}}) == "owner-label");
  CHECK(with("internal", true) == "unknown-key");
  CHECK(with("Driver", "") == "");
}

TEST_CASE("volume create") {
  auto vol = [](json body) { return gh::docker::check_volume_create(std::move(body), rules()); };
  auto c = vol(parsed(kCliVolume));
  REQUIRE(c);
  CHECK((*c)["Labels"] == json{{"a", "b"}, {kOwnerLabel, "job-1"}});
  CHECK((*vol(json::object()))["Labels"] == json{{kOwnerLabel, "job-1"}});
  CHECK(rule_of(vol(json{{"Driver", "nfs"}})) == "volume-driver");
  CHECK(rule_of(vol(json{{"DriverOpts", {{"type", "none"}, {"o", "bind"}, {"device", "/etc"}}}})) == "volume-driver-opts");
  CHECK(rule_of(vol(json{{"ClusterVolumeSpec", {{"Group", "g"}}}})) == "volume-cluster");
  CHECK(rule_of(vol(json{{"Labels", {{kOwnerLabel, "job-2"}}}})) == "owner-label");
  CHECK(rule_of(vol(json{{"driver", "local"}})) == "unknown-key");
  CHECK(rule_of(vol(json{{"DriverOpts", json::object()}})) == "");
}

TEST_CASE("container create: names of the job's objects are forwarded as the ids that were checked") {
  // Between the check and the daemon's use, a name could come to mean
  // another object; the id cannot.
  struct WithIds : FakeOwnership {
    std::string container_id(const std::string& n) override { return container_owned(n) ? "id-of-" + n : ""; }
    std::string network_id(const std::string& n) override { return network_owned(n) ? "id-of-" + n : ""; }
  } own;
  json b = parsed(kCliCreate);
  b["HostConfig"]["VolumesFrom"] = json::array({"mine:ro"});
  b["HostConfig"]["Links"] = json::array({"mine", "/mine:db"});
  b["HostConfig"]["NetworkMode"] = "jobnet";
  b["NetworkingConfig"]["EndpointsConfig"] = {{"jobnet", {{"Aliases", json::array({"web"})}}}};
  auto c = gh::docker::check_container_create(std::move(b), rules(), own);
  INFO((c ? std::string() : c.error().message));
  REQUIRE(c);
  CHECK((*c)["HostConfig"]["VolumesFrom"] == json::array({"id-of-mine:ro"}));
  CHECK((*c)["HostConfig"]["Links"] == json::array({"id-of-mine:mine", "id-of-mine:db"}));
  CHECK((*c)["HostConfig"]["NetworkMode"] == "id-of-jobnet");
  CHECK((*c)["NetworkingConfig"]["EndpointsConfig"].contains("id-of-jobnet"));
  CHECK_FALSE((*c)["NetworkingConfig"]["EndpointsConfig"].contains("jobnet"));
  CHECK((*c)["NetworkingConfig"]["EndpointsConfig"]["id-of-jobnet"]["Aliases"] == json::array({"web"}));
}
