// Which daemon objects belong to the job. Every object the job creates
// carries the owner label (kOwnerLabel = the job id); before any request
// that names an object, the proxy inspects it and proceeds only if the
// label is the job's, then acts on the full id the inspect returned, so
// the name the job wrote cannot resolve to something else in between.
// "Not found" and "not this job's" give the same 404 answer: a job cannot
// learn the names of other jobs' objects by probing.
#pragma once

#include <mutex>
#include <set>
#include <string>

#include "docker/container_rules.hpp"
#include "docker/proxy.hpp"
#include "docker/upstream.hpp"

namespace gh::docker {

// Full container ids an inspect has proved to be the job's, shared by the
// proxy's connections. A container's labels cannot change and its 64-hex
// id is never reused, so a request naming exactly such an id (as the
// Docker CLI does after create) needs no second inspect. Names and id
// prefixes are always inspected.
class OwnedIds {
 public:
  bool has(const std::string& id) const {
    std::lock_guard lk(mu_);
    return ids_.count(id) > 0;
  }
  void add(const std::string& id) {
    std::lock_guard lk(mu_);
    if (ids_.size() < 100000) ids_.insert(id);
  }

 private:
  mutable std::mutex mu_;
  std::set<std::string> ids_;
};

class JobObjects final : public Ownership {
 public:
  JobObjects(const Upstream& up, const JobRules& rules, OwnedIds* known = nullptr)
      : up_(up), rules_(rules), known_(known) {}

  Checked<std::string> container(const std::string& ref);       // full id
  Checked<std::string> exec(const std::string& exec_id);        // full exec id, its container the job's
  Checked<std::string> network(const std::string& ref);         // full id
  Checked<std::string> volume(const std::string& name);         // name
  Checked<std::string> image(const std::string& ref);           // full id ("sha256:...")
  // An image the job may name as a base or run: its own, or one the
  // profile's `images` patterns allow.
  bool image_usable(const std::string& ref) override;
  // A name the job may give an image (build -t, tag): not one that exists
  // and is not the job's, and not one that shadows an allowed base.
  Checked<std::string> free_image_name(const std::string& ref);

  bool container_owned(const std::string& ref) override { return container(ref).ok(); }
  bool network_owned(const std::string& ref) override { return network(ref).ok(); }
  std::string container_id(const std::string& ref) override {
    auto id = container(ref);
    return id ? *id : std::string();
  }
  std::string network_id(const std::string& ref) override {
    auto id = network(ref);
    return id ? *id : std::string();
  }
  bool volume_owned(const std::string& name) override { return volume(name).ok(); }

  // `filters` (a list, prune or events query value) with the owner label
  // added; the daemon ANDs label filters, so the answer holds only the
  // job's objects whatever else the job asked for.
  Checked<std::string> owned_filters(const std::string* filters) const;
  std::string owner_selector() const { return std::string(kOwnerLabel) + "=" + rules_.job_id; }

  // At job end: every container (with its anonymous volumes), network,
  // volume and image carrying the job's label, removed. Returns what could
  // not be removed, one line each (empty: all gone).
  std::vector<std::string> remove_all();

 private:
  bool labelled(const nlohmann::json& labels) const;

  const Upstream& up_;
  const JobRules& rules_;
  OwnedIds* known_;
};

}  // namespace gh::docker
