// `gatehouse policy check|explain|diff|digest` (exit statuses in the header).
//
// The reports themselves (diagnostics from check, explanations, the diff,
// the digest) go to stdout, where a reviewer or a CI step collects them;
// a file that does not parse makes explain/diff/digest print its errors on
// stderr and exit 2, since there is nothing true to say about it.
#include "cli/policy_command.hpp"

#include <iostream>

#include "common/exit_status.hpp"
#include "common/yaml_util.hpp"

namespace gh::cli {

namespace {

std::string count(size_t n, const char* one, const char* many) {
  return std::to_string(n) + " " + (n == 1 ? one : many);
}

// The parsed policy, or nullopt after printing why not.
std::optional<policy::Policy> load(const std::string& file) {
  policy::PolicyOutcome o = policy::parse_policy_file(file);
  if (o.policy && !o.diagnostics.has_errors()) return std::move(o.policy);
  std::cerr << o.diagnostics.render();
  size_t errors = 0;
  for (const auto& d : o.diagnostics.all()) errors += d.severity == Severity::Error;
  std::cerr << file << ": " << count(errors, "error", "errors") << "\n";
  return std::nullopt;
}

std::string describe_meta(const policy::JobMeta& m) {
  std::string s;
  const std::pair<const char*, const std::string*> fields[] = {{"project", &m.project}, {"branch", &m.branch},
                                                               {"tag", &m.tag},         {"trigger", &m.trigger},
                                                               {"job", &m.job},         {"signed by", &m.signed_by}};
  for (const auto& [name, value] : fields)
    if (!value->empty()) s += (s.empty() ? "" : ", ") + std::string(name) + " " + yaml::printable(*value);
  return s;
}

}  // namespace

int policy_check(const std::vector<std::string>& files, bool strict) {
  bool any_error = false, any_warning = false;
  for (const auto& file : files) {
    policy::PolicyOutcome o = policy::parse_policy_file(file);
    if (o.policy && !o.diagnostics.has_errors()) policy::lint(*o.policy, o.diagnostics);
    size_t errors = 0, warnings = 0;
    for (const auto& d : o.diagnostics.all()) (d.severity == Severity::Error ? errors : warnings)++;
    std::cout << o.diagnostics.render();
    std::cout << file << ": " << count(errors, "error", "errors") << ", " << count(warnings, "warning", "warnings")
              << "\n";
    any_error |= errors > 0;
    any_warning |= warnings > 0;
  }
  if (any_error) return kBadInput;
  return strict && any_warning ? 1 : 0;
}

int policy_explain(const ExplainOptions& opts) {
  auto p = load(opts.file);
  if (!p) return kBadInput;
  if (opts.profile) {
    const policy::Profile* prof = nullptr;
    for (const auto& candidate : p->profiles)
      if (candidate.name == *opts.profile) prof = &candidate;
    if (!prof) {
      std::string names;
      for (const auto& candidate : p->profiles) names += (names.empty() ? "" : ", ") + candidate.name;
      std::cerr << opts.file << ": no profile `" << yaml::printable(*opts.profile) << "`; the profiles are: " << names
                << "\n";
      return kBadInput;
    }
    std::cout << policy::explain_profile(*prof, *p);
    return 0;
  }
  if (opts.by_meta) {
    const policy::Selection sel = policy::select_profile(*p, opts.meta);
    if (!sel.profile || sel.rule_index >= p->rules.size()) {
      // Cannot happen in a parsed policy (the last rule matches every job),
      // but a tool that explains must not guess.
      std::cerr << opts.file << ": no rule matches this job\n";
      return kBadInput;
    }
    const policy::Rule& r = p->rules[sel.rule_index];
    std::cout << "A job with " << describe_meta(opts.meta) << " matches rule " << sel.rule_index + 1;
    if (r.mark.line > 0) std::cout << " (" << opts.file << ":" << r.mark.line << ")";
    std::cout << " and runs with profile `" << sel.profile->name << "`.\n\n";
    std::cout << policy::explain_profile(*sel.profile, *p);
    return 0;
  }
  std::cout << policy::explain(*p);
  return 0;
}

int policy_diff(const std::string& old_file, const std::string& new_file) {
  auto a = load(old_file);
  auto b = load(new_file);
  if (!a || !b) return kBadInput;
  const auto lines = policy::diff(*a, *b);
  std::cout << policy::render_diff(lines);
  for (const auto& l : lines)
    if (l.kind == policy::DiffLine::Kind::Widened) return 1;
  return 0;
}

int policy_digest(const std::string& file, bool canonical) {
  auto p = load(file);
  if (!p) return kBadInput;
  if (canonical)
    std::cout << policy::canonical_yaml(*p);
  else
    std::cout << policy::policy_digest(*p) << "  " << file << "\n";
  return 0;
}

}  // namespace gh::cli
