// The three files the broker needs as data, each turned into typed data by
// the parse child (parse_client.hpp) and each read as the owner of its
// folder (checkout.hpp: read_file_as_owner). A failing or misbehaving
// parse child is an infrastructure error; errors in the file are bad
// input, shown as the parser rendered them.
#include "broker/loaders.hpp"

#include <cstring>

#include "broker/checkout.hpp"
#include "broker/parse_client.hpp"
#include "common/exit_status.hpp"
#include "common/orb_folder.hpp"

namespace gh::broker {

namespace {

LoadError infra_error(const Error& e) {
  return LoadError{kInfra, "gatehouse: infrastructure error: " + e.message + "\n", e.message};
}

Result<LoadedPolicy, LoadError> from_result(Result<ipc::ParseResult> r, const std::string& path) {
  if (!r) return infra_error(r.error());
  if (!r->policy) return LoadError{kBadInput, r->diagnostics, "the policy " + (path.empty() ? "(built-in)" : path) + " has errors"};
  LoadedPolicy out;
  out.policy = std::move(r->policy->policy);
  out.digest = std::move(r->policy->digest);
  out.path = path;
  // The decoder checked one whole-instruction filter per profile.
  for (const std::string& bpf : r->policy->filters) {
    sandbox::SeccompProgram prog;
    prog.insns.resize(bpf.size() / sizeof(sock_filter));
    memcpy(prog.insns.data(), bpf.data(), bpf.size());
    out.filters.push_back(std::move(prog));
  }
  return out;
}

// The orbs the parse child asked for, from the local orb folder. The names
// came from the job file: find_orb_file checks them before making a path.
// An orb the folder does not have goes back as empty text, and the parser
// refuses it at the line that names it.
std::optional<LoadError> read_orbs(const std::vector<std::string>& refs, const std::string& display,
                                   job::ProcessInput& in) {
  if (in.orb_directory.empty()) in.orb_directory = kDefaultOrbDirectory;
  size_t total = 0;
  for (const auto& o : in.orbs) total += o.second.size();
  for (const std::string& ref : refs) {
    if (in.orbs.size() >= job::kMaxOrbs)
      return LoadError{kBadInput, display + ": error: the job uses more than " + std::to_string(job::kMaxOrbs) + " orbs\n",
                       "the job file " + display + " has errors"};
    auto file = find_orb_file(in.orb_directory, ref);
    if (!file) return LoadError{kBadInput, display + ": error: " + file.error().message + "\n", "the job file " + display + " has errors"};
    std::string text;
    if (*file) {
      auto t = read_file_as_owner(**file, job::kMaxJobFileBytes);
      if (!t) return LoadError{kBadInput, **file + ": error: " + t.error().message + "\n", "the orb " + **file + " cannot be read"};
      text = std::move(*t);
      total += text.size();
      if (total > job::kMaxOrbBytes)
        return LoadError{kBadInput, display + ": error: the orbs the job uses are more than " +
                         std::to_string(job::kMaxOrbBytes >> 20) + " MiB together\n", "the job's orbs are too large"};
    }
    in.orbs.emplace_back(ref, std::move(text));
  }
  return std::nullopt;
}

}  // namespace

const sandbox::SeccompProgram* LoadedPolicy::filter_of(const policy::Profile& p) const {
  for (size_t i = 0; i < policy.profiles.size() && i < filters.size(); ++i)
    if (policy.profiles[i].name == p.name) return &filters[i];
  return nullptr;
}

Result<LoadedPolicy, LoadError> load_policy_text(const std::string& text, const std::string& path) {
  return from_result(parse_policy_confined(text, path), path);
}

Result<LoadedPolicy, LoadError> load_policy(const std::optional<std::string>& path) {
  if (!path) return from_result(builtin_policy_confined(), "");
  auto text = read_file_as_owner(*path, policy::kMaxPolicyFileBytes + 1);
  if (!text) return LoadError{kBadInput, *path + ": error: " + text.error().message + "\n", "the policy " + *path + " has errors"};
  return load_policy_text(*text, *path);
}

Result<LoadedJob, LoadError> load_job(const std::string& text, const std::string& display,
                                      const job::ProcessInput& given) {
  job::ProcessInput in = given;
  auto r = parse_job_confined(text, display, in);
  if (!r) return infra_error(r.error());
  if (!r->needed_orbs.empty()) {
    // One more round with the orbs; a parser that asks again is broken.
    if (auto e = read_orbs(r->needed_orbs, display, in)) return *e;
    r = parse_job_confined(text, display, in);
    if (!r) return infra_error(r.error());
    if (!r->needed_orbs.empty()) return infra_error(Error{"the job parser asked for orbs it was given"});
  }
  if (!r->job) return LoadError{kBadInput, r->diagnostics, "the job file " + display + " has errors"};
  return LoadedJob{std::move(*r->job)};
}

Result<ServeSettings, LoadError> load_settings(const std::string& path, const std::map<std::string, std::string>& env) {
  auto text = read_file_as_owner(path, ipc::kMaxConfigBytes + 1);
  if (!text) return LoadError{kBadInput, path + ": error: " + text.error().message + "\n", "the configuration " + path + " has errors"};
  auto r = parse_settings_confined(*text, path, env);
  if (!r) return infra_error(r.error());
  if (!r->settings) return LoadError{kBadInput, r->diagnostics, "the configuration " + path + " has errors"};
  const ipc::BrokerSettings& b = *r->settings;
  ServeSettings s;
  s.runner_name = b.runner_name;
  s.working_directory = b.working_directory;
  s.cleanup_working_directory = b.cleanup_working_directory;
  s.uid_lock_directory = b.uid_lock_directory;
  s.orb_directory = b.orb_directory;
  s.spool_directory = b.spool_directory;
  s.policy = b.policy;
  s.policy_set = b.policy_set;
  s.auth_token_file = b.auth_token_file;
  s.metrics_listen = b.metrics_listen;
  s.logging_file = b.log_file;
  s.lock_directory = b.lock_directory;
  s.uid_slice_index = b.uid_slice_index;
  s.uid_slice_count = b.uid_slice_count;
  return s;
}

}  // namespace gh::broker
