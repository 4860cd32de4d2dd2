#include "docker/ownership.hpp"

#include "docker/image_ref.hpp"
#include "docker/strict_json.hpp"

namespace gh::docker {

namespace {

std::string missing(const char* kind, const std::string& ref) {
  return std::string("no such ") + kind + " in this job: " + ref +
         " (the proxy lets a job reach only the objects it created)";
}

const nlohmann::json* field(const nlohmann::json& j, const char* a, const char* b = nullptr) {
  if (!j.is_object()) return nullptr;
  auto it = j.find(a);
  if (it == j.end()) return nullptr;
  if (!b) return &*it;
  if (!it->is_object()) return nullptr;
  auto it2 = it->find(b);
  return it2 == it->end() ? nullptr : &*it2;
}

std::string string_field(const nlohmann::json& j, const char* a) {
  const auto* f = field(j, a);
  return f && f->is_string() ? f->get<std::string>() : std::string();
}

}  // namespace

bool JobObjects::labelled(const nlohmann::json& labels) const {
  if (!labels.is_object()) return false;
  auto it = labels.find(kOwnerLabel);
  return it != labels.end() && it->is_string() && it->get<std::string>() == rules_.job_id;
}

Checked<std::string> JobObjects::container(const std::string& ref) {
  if (known_ && known_->has(ref)) return ref;
  auto j = up_.get_json(versioned("/containers/" + encode_segment(ref) + "/json"), missing("container", ref));
  if (!j) return j.error();
  const auto* labels = field(*j, "Config", "Labels");
  if (!labels || !labelled(*labels)) return refuse("not-owned", missing("container", ref), 404);
  std::string id = string_field(*j, "Id");
  if (id.empty()) return refuse("upstream", "the daemon's inspect of " + ref + " has no Id", 502);
  if (known_ && id.size() == 64) known_->add(id);
  return id;
}

Checked<std::string> JobObjects::exec(const std::string& exec_id) {
  auto j = up_.get_json(versioned("/exec/" + encode_segment(exec_id) + "/json"), missing("exec instance", exec_id));
  if (!j) return j.error();
  std::string cid = string_field(*j, "ContainerID"), id = string_field(*j, "ID");
  if (cid.empty() || id.empty()) return refuse("upstream", "the daemon's exec inspect of " + exec_id + " is incomplete", 502);
  if (auto c = container(cid); !c) return refuse("not-owned", missing("exec instance", exec_id), 404);
  return id;
}

Checked<std::string> JobObjects::network(const std::string& ref) {
  auto j = up_.get_json(versioned("/networks/" + encode_segment(ref)), missing("network", ref));
  if (!j) return j.error();
  const auto* labels = field(*j, "Labels");
  if (!labels || !labelled(*labels)) return refuse("not-owned", missing("network", ref), 404);
  std::string id = string_field(*j, "Id");
  if (id.empty()) return refuse("upstream", "the daemon's inspect of network " + ref + " has no Id", 502);
  return id;
}

Checked<std::string> JobObjects::volume(const std::string& name) {
  auto j = up_.get_json(versioned("/volumes/" + encode_segment(name)), missing("volume", name));
  if (!j) return j.error();
  const auto* labels = field(*j, "Labels");
  if (!labels || !labelled(*labels)) return refuse("not-owned", missing("volume", name), 404);
  std::string n = string_field(*j, "Name");
  return n.empty() ? name : n;
}

Checked<std::string> JobObjects::image(const std::string& ref) {
  auto j = up_.get_json(versioned("/images/" + encode_segment(ref) + "/json"), missing("image", ref));
  if (!j) return j.error();
  const auto* labels = field(*j, "Config", "Labels");
  if (!labels || !labelled(*labels)) return refuse("not-owned", missing("image", ref), 404);
  std::string id = string_field(*j, "Id");
  if (id.empty()) return refuse("upstream", "the daemon's inspect of image " + ref + " has no Id", 502);
  return id;
}

// Allowed by name must mean resolved by that name: the daemon falls back to
// an id prefix when no tag matches, so `abc123` (which a docker.io/library/*
// pattern matches) could run any image whose id starts so. An existing image
// is usable only if one of its tags or digests is the reference itself; a
// missing one the daemon will pull by that name.
bool JobObjects::image_usable(const std::string& ref) {
  auto r = up_.call("GET", versioned("/images/" + encode_segment(ref) + "/json"));
  if (!r) return false;
  const bool allowed = image_allowed(rules_.images, ref);
  if (r->status == 404) return allowed;  // the daemon will pull it by that name
  if (r->status != 200) return false;
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return false;
  if (const auto* labels = field(j, "Config", "Labels"); labels && labelled(*labels)) return true;
  if (!allowed) return false;
  const std::string want = normalise_image(ref);
  for (const char* key : {"RepoTags", "RepoDigests"}) {
    const auto* names = field(j, key);
    if (!names || !names->is_array()) continue;
    for (const auto& n : *names)
      if (n.is_string() && normalise_image(n.get<std::string>()) == want) return true;
  }
  return false;
}

Checked<std::string> JobObjects::free_image_name(const std::string& ref) {
  std::string full = normalise_image(ref);
  if (full.empty()) return refuse("image-name", "`" + ref + "` is not an image reference", 400);
  if (image_allowed(rules_.images, full))
    return refuse("image-name", "`" + ref + "` is a name this profile allows as a base image; another job could run it. "
                                "Name the job's images outside the `images` patterns");
  auto r = up_.call("GET", versioned("/images/" + encode_segment(ref) + "/json"));
  if (!r) return r.error();
  if (r->status == 404) return full;
  if (r->status != 200) return refuse("upstream", "the daemon answered " + std::to_string(r->status) + " inspecting " + ref, 502);
  auto j = nlohmann::json::parse(r->body, nullptr, false);
  const auto* labels = j.is_discarded() ? nullptr : field(j, "Config", "Labels");
  if (!labels || !labelled(*labels))
    return refuse("image-name", "`" + ref + "` names an image this job does not own; choose another name");
  return full;
}

Checked<std::string> JobObjects::owned_filters(const std::string* filters) const {
  nlohmann::json f = nlohmann::json::object();
  if (filters && !filters->empty()) {
    auto parsed = parse_strict(*filters);
    if (!parsed) return parsed.error();
    if (!parsed->is_object()) return refuse("filters", "`filters` must be a JSON object", 400);
    f = std::move(*parsed);
  }
  // Both shapes the daemon accepts ({"label":["a=b"]} and {"label":{"a=b":true}})
  // become the map shape, with the owner's selector in it.
  nlohmann::json labels = nlohmann::json::object();
  if (auto it = f.find("label"); it != f.end()) {
    if (it->is_array()) {
      for (const auto& v : *it) {
        if (!v.is_string()) return refuse("filters", "`filters.label` entries must be strings", 400);
        labels[v.get<std::string>()] = true;
      }
    } else if (it->is_object()) {
      for (auto& [k, v] : it->items()) {
        if (!v.is_boolean()) return refuse("filters", "`filters.label` values must be true or false", 400);
        if (v.get<bool>()) labels[k] = true;
      }
    } else {
      return refuse("filters", "`filters.label` must be a list or a map", 400);
    }
  }
  labels[owner_selector()] = true;
  f["label"] = labels;
  return f.dump();
}

std::vector<std::string> JobObjects::remove_all() {
  std::vector<std::string> left;
  nlohmann::json filt = {{"label", {owner_selector()}}};
  const std::string q = "filters=" + encode_segment(filt.dump());
  auto each = [&](const std::string& list, const char* id_key, const std::string& kind, const std::string& remove_prefix,
                  const std::string& remove_query) {
    auto r = up_.get_json(versioned(list), "");
    if (!r) {
      left.push_back("listing " + kind + "s: " + r.error().message);
      return;
    }
    const nlohmann::json& arr = kind == "volume" ? (*r)["Volumes"] : *r;
    if (!arr.is_array()) return;
    for (const auto& o : arr) {
      std::string id = string_field(o, id_key);
      if (id.empty()) continue;
      auto d = up_.call("DELETE", versioned(remove_prefix + encode_segment(id) + remove_query));
      if (!d) left.push_back(kind + " " + id + ": " + d.error().message);
      else if (d->status >= 300 && d->status != 404)
        left.push_back(kind + " " + id + ": the daemon answered " + std::to_string(d->status) + ": " + d->body.substr(0, 200));
    }
  };
  each("/containers/json?all=1&" + q, "Id", "container", "/containers/", "?force=1&v=1");
  each("/networks?" + q, "Id", "network", "/networks/", "");
  each("/volumes?" + q, "Name", "volume", "/volumes/", "?force=1");
  each("/images/json?all=1&" + q, "Id", "image", "/images/", "?force=1");
  return left;
}

}  // namespace gh::docker
