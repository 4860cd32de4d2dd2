// The proxy's side of its config: the rules the broker wrote (as JSON,
// into a memfd at fd 4), read strictly. Only the proxy links this; the
// broker only writes (proxy_config.cpp).
#include "docker/proxy_config.hpp"

#include <nlohmann/json.hpp>

namespace gh::docker {

Result<JobRules> rules_from_json(const std::string& text) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return err("the proxy config is not a JSON object");
  static const char* kKeys[] = {"job_id", "bind_roots", "ports", "images", "push", "buildkit",
                                "memory_bytes", "pids", "cpus", "network_none"};
  for (auto& [k, v] : j.items()) {
    bool known = false;
    for (const char* n : kKeys) known = known || k == n;
    if (!known) return err("the proxy config has an unknown key `" + k + "`");
  }
  JobRules r;
  try {
    r.job_id = j.at("job_id").get<std::string>();
    for (const auto& b : j.at("bind_roots")) r.bind_roots.push_back({b.at("job_path").get<std::string>(), b.at("host_path").get<std::string>()});
    for (const auto& p : j.at("ports")) r.ports.push_back({p.at(0).get<uint16_t>(), p.at(1).get<uint16_t>()});
    r.images = j.at("images").get<std::vector<std::string>>();
    r.push = j.at("push").get<std::vector<std::string>>();
    r.buildkit = j.at("buildkit").get<bool>();
    r.memory_bytes = j.at("memory_bytes").get<uint64_t>();
    r.pids = j.at("pids").get<uint64_t>();
    r.cpus = j.at("cpus").get<double>();
    r.network_none = j.at("network_none").get<bool>();
  } catch (const nlohmann::json::exception& e) {
    return err(std::string("the proxy config: ") + e.what());
  }
  if (r.job_id.empty()) return err("the proxy config has no job_id");
  for (const auto& b : r.bind_roots)
    if (b.job_path.empty() || b.job_path[0] != '/' || b.host_path.empty() || b.host_path[0] != '/')
      return err("the proxy config's bind_roots must be absolute paths");
  return r;
}

}  // namespace gh::docker
