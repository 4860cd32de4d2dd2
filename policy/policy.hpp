// The policy file (/etc/gatehouse/policy.yaml): profiles, the rules that
// pick one for a job, and where secrets and the audit log live.
//
// One file says exactly what any job may do. It is read strictly (every
// error at once, each at file:line:column with what is allowed there), and
// the tools operators review it with work on the parsed, resolved form:
//   check   (lint.cpp)      errors and warnings about dangerous grants
//   explain (explain.cpp)   what a job may do, in plain words
//   diff    (diff.cpp)      what a change widens, narrows, keeps
//   digest  (canonical.cpp) SHA-256 of the canonical form
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/diagnostics.hpp"
#include "policy/profile.hpp"

namespace gh::policy {

inline constexpr size_t kMaxPolicyFileBytes = 1 << 20;
// How many profiles and rules a file may define, and values one field of a
// rule's `match` may list (policy_parse.cpp refuses more; the parse child's
// typed answer is bounded by the same numbers, ipc/policy_codec.cpp).
inline constexpr size_t kMaxProfiles = 1000;
inline constexpr size_t kMaxRules = 1000;
inline constexpr size_t kMaxRulePatterns = 64;
inline constexpr const char* kDefaultPolicyPath = "/etc/gatehouse/policy.yaml";
inline constexpr const char* kDefaultSecretsDir = "/etc/gatehouse/secrets";
inline constexpr const char* kDefaultAuditLog = "/var/log/gatehouse/audit.jsonl";

// What is known about a job when it is admitted. `gatehouse run` takes these
// from flags; `serve` from the control plane. Empty means "not known": a rule
// that tests a field matches only when it is known and matches.
struct JobMeta {
  std::string project;    // "org/repo"
  std::string branch;
  std::string tag;
  std::string trigger;    // one of kTriggers
  std::string job;        // the job's name
  std::string signed_by;  // name of the trusted key that signed the job ("" = unsigned)
};
inline constexpr const char* kTriggers[] = {"push", "pull_request", "fork_pull_request", "tag",
                                           "schedule", "manual", "api"};

// One rule: every field given must match (AND); within a field, any of the
// patterns (OR). Patterns are globs: `*` matches any run of characters
// except `/`, `**` any run including `/`, `?` one character. A rule with no
// `match` matches every job and must be the last one (the default).
struct RuleMatch {
  std::vector<std::string> project, branch, tag, trigger, job, signed_by;
  bool empty() const {
    return project.empty() && branch.empty() && tag.empty() && trigger.empty() && job.empty() && signed_by.empty();
  }
};

struct Rule {
  RuleMatch match;
  std::string profile;  // name of a profile in the same file
  Mark mark;
};

struct AuditSettings {
  std::string log = kDefaultAuditLog;
};

// Job signatures (common/job_signature.hpp checks them): the Ed25519 keys
// whose signatures the agent accepts, and whether a job from the control
// plane must carry one. A job that carries a signature that does not verify
// is refused whatever `required` says.
inline constexpr size_t kMaxTrustedKeys = 64;
struct TrustedKey {
  std::string name;  // [a-z0-9][a-z0-9._-]{0,63}; what rules' `signed_by` names
  std::array<unsigned char, 32> public_key{};  // raw Ed25519 public key
  Mark mark;
};
struct Signatures {
  bool required = false;  // true: unsigned jobs are refused
  std::vector<TrustedKey> trusted_keys;
  Mark mark;  // the `signatures:` key; unknown when the file has none
  const TrustedKey* find(const std::string& name) const {
    for (const auto& k : trusted_keys)
      if (k.name == name) return &k;
    return nullptr;
  }
};
// Inline, as the signature checker (gh_protocol) reads untrusted key names
// with it without linking the policy parser.
inline bool valid_key_name(const std::string& name) {
  auto lower_or_digit = [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); };
  if (name.empty() || name.size() > 64 || !lower_or_digit(name[0])) return false;
  for (char c : name)
    if (!lower_or_digit(c) && c != '.' && c != '_' && c != '-') return false;
  return true;
}
// The public key as written in the policy (standard base64, 44 characters).
std::string public_key_base64(const TrustedKey& k);
// True for the Ed25519 points of small order: a signature made of such
// points verifies under such a "key" for any message, so the parser refuses
// them (and so does the broker when it decodes a parsed policy).
bool small_order_public_key(const std::array<unsigned char, 32>& key);

struct Policy {
  int version = 1;
  std::string secrets_dir = kDefaultSecretsDir;
  AuditSettings audit;
  Signatures signatures;
  // Resolved: `extends` applied, every field set. In file order.
  std::vector<Profile> profiles;
  // In file order; the last one has an empty match (the default). A file
  // without `rules:` behaves as one rule `- profile: default`.
  std::vector<Rule> rules;
  bool rules_written = false;  // false when the file has no `rules:`

  const Profile* find(const std::string& name) const;
};

struct PolicyOutcome {
  std::optional<Policy> policy;  // set only when there are no errors
  Diagnostics diagnostics;       // errors (and, from lint(), warnings)
};

// Parses and validates the whole file: every profile, every rule, every
// reference between them. Warnings are not added here (see lint()).
PolicyOutcome parse_policy_file(const std::string& path);
PolicyOutcome parse_policy_text(const std::string& display_path, const std::string& text);

// The built-in policy (no file): the built-in profile as `default`, one rule.
Policy builtin_policy();

// Rule selection: the first rule that matches wins.
struct Selection {
  size_t rule_index = 0;  // 0-based, into Policy::rules
  const Profile* profile = nullptr;
};
Selection select_profile(const Policy& p, const JobMeta& meta);
bool glob_match(const std::string& pattern, const std::string& text);

// Canonical form (canonical.cpp): every field of every resolved profile,
// defaults written out, keys in a fixed order, sizes in bytes, durations in
// seconds, no `extends`. It is itself a valid policy file: parsing it gives
// a policy whose canonical form is byte-for-byte the same.
std::string canonical_yaml(const Policy& p);
// Lower-case hex SHA-256 of canonical_yaml(p).
std::string policy_digest(const Policy& p);

// `policy check` (lint.cpp): warnings for dangerous grants, added to d.
void lint(const Policy& p, Diagnostics& d);

// `policy explain` (explain.cpp): plain words. With `only` set, that profile
// only; otherwise every rule and every profile.
std::string explain(const Policy& p, const std::string* only_profile = nullptr);
std::string explain_profile(const Profile& prof, const Policy& p);

// `policy diff` (diff.cpp).
struct DiffLine {
  enum class Kind { Widened, Narrowed, Unchanged } kind;
  std::string text;  // "profile `ci`: network: none -> host"
};
std::vector<DiffLine> diff(const Policy& old_policy, const Policy& new_policy);
std::string render_diff(const std::vector<DiffLine>& lines);

// The reload path (`serve` on SIGHUP): the new file replaces `current` only
// when it parses completely; otherwise `current` is untouched and the
// diagnostics say why.
struct ReloadResult {
  bool replaced = false;
  std::string old_digest, new_digest;
  Diagnostics diagnostics;
};
ReloadResult reload_policy(const std::string& path, Policy& current);

}  // namespace gh::policy
