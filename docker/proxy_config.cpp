#include "docker/proxy_config.hpp"

#include <nlohmann/json.hpp>

namespace gh::docker {

std::string rules_to_json(const JobRules& r) {
  nlohmann::json j;
  j["job_id"] = r.job_id;
  j["bind_roots"] = nlohmann::json::array();
  for (const auto& b : r.bind_roots) j["bind_roots"].push_back({{"job_path", b.job_path}, {"host_path", b.host_path}});
  j["ports"] = nlohmann::json::array();
  for (const auto& p : r.ports) j["ports"].push_back({p.first, p.last});
  j["images"] = r.images;
  j["push"] = r.push;
  j["buildkit"] = r.buildkit;
  j["memory_bytes"] = r.memory_bytes;
  j["pids"] = r.pids;
  j["cpus"] = r.cpus;
  j["network_none"] = r.network_none;
  return j.dump();
}

}  // namespace gh::docker
