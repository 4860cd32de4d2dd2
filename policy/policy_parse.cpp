// The policy file: version, where secrets and the audit log live, the keys
// job signatures are checked against, the profiles (with `extends`
// resolved) and the rules that pick one per job.
//
// Everything is checked, and every error is collected, before a Policy
// exists: a file with one mistake yields no policy at all, so a caller can
// never run a job under half of what the operator wrote. Profiles are
// resolved parent first; a profile whose chain is broken (unknown parent,
// cycle, too deep) is still parsed on its own, so its other errors show up
// in the same run.
#include <openssl/evp.h>

#include <algorithm>
#include <exception>
#include <map>
#include <set>
#include <string>
#include <string_view>

#include "common/yaml_util.hpp"
#include "policy/policy.hpp"
#include "policy/profile_parse.hpp"

namespace gh::policy {

namespace {

using yaml::Entry;
using yaml::quoted;

constexpr size_t kMaxPatterns = kMaxRulePatterns;  // policy.hpp
constexpr int kMaxExtendsDepth = 16;
constexpr const char* kTopKeys = "version, secrets_dir, audit, signatures, profiles, rules";

// One profile as written, before it is resolved.
struct Source {
  std::string name;
  Mark mark;
  std::vector<Entry> body;
  std::string extends;  // "" = the built-in defaults
  Mark extends_mark;
  bool broken = false;  // its chain cannot be resolved (reported, or its parent's error says why)
  int hops = 0;         // extends links to the built-in defaults
};

std::string chain_text(const std::vector<Source>& srcs, const std::vector<size_t>& chain, size_t back_to) {
  std::string s;
  for (size_t i : chain) s += "`" + srcs[i].name + "` -> ";
  return s + "`" + srcs[back_to].name + "`";
}

// Follows one profile's `extends` chain. Only problems with the profile's
// own link or a cycle it is part of are reported here; a chain broken
// further up is reported at the profile that breaks it.
void walk_chain(std::vector<Source>& srcs, size_t i, const std::map<std::string, size_t>& index,
                const std::string& defined, Diagnostics& d) {
  Source& s = srcs[i];
  std::vector<size_t> chain{i};
  size_t cur = i;
  while (!srcs[cur].extends.empty()) {
    auto it = index.find(srcs[cur].extends);
    if (it == index.end()) {
      if (cur == i)
        d.error(s.extends_mark, "profile `" + s.name + "` extends `" + yaml::printable(s.extends) +
                                    "`, which is not a profile in this policy", "one of: " + defined);
      s.broken = true;
      return;
    }
    const size_t next = it->second;
    if (next == i) {
      d.error(s.extends_mark, cur == i ? "profile `" + s.name + "` extends itself"
                                       : "`extends` makes a cycle: " + chain_text(srcs, chain, i),
              "a parent that does not lead back to this profile");
      s.broken = true;
      return;
    }
    if (std::find(chain.begin(), chain.end(), next) != chain.end()) {
      s.broken = true;  // a cycle above this profile, reported by its members
      return;
    }
    if (++s.hops > kMaxExtendsDepth) {
      d.error(s.extends_mark, "profile `" + s.name + "` is more than " + std::to_string(kMaxExtendsDepth) +
                                  " `extends` links away from the built-in defaults",
              "chains of at most " + std::to_string(kMaxExtendsDepth) + " profiles");
      s.broken = true;
      return;
    }
    chain.push_back(next);
    cur = next;
  }
}

void parse_profiles(const Entry& section, Policy& pol, Diagnostics& d) {
  if (!yaml::expect_map(section, d)) return;
  const auto es = yaml::entries(section.value, d);
  if (es.empty()) {
    d.error(section.mark, "`profiles` defines no profile", "profiles: {NAME: {...}}");
    return;
  }
  if (es.size() > kMaxProfiles) {
    d.error(section.mark, "`profiles` defines more than " + std::to_string(kMaxProfiles) + " profiles",
            "at most " + std::to_string(kMaxProfiles));
    return;
  }
  std::vector<Source> srcs;
  std::map<std::string, size_t> index;
  std::vector<std::string> names;
  for (const auto& p : es) {
    Source s{p.key, p.mark, {}, {}, {}, false, 0};
    if (!detail::valid_profile_name(p.key))
      d.error(p.mark, "profile name " + yaml::describe(YAML::Node(p.key)) + " is not valid",
              "1 to 64 of letters, digits, _, - and .");
    if (!p.value.IsNull() && yaml::expect_map(p.value, "profile `" + yaml::printable(p.key) + "`", d, p.mark))
      s.body = yaml::entries(p.value, d);
    for (const auto& e : s.body) {
      if (e.key != "extends") continue;
      s.extends_mark = yaml::value_mark(e.value, e.mark);
      auto v = yaml::get_string(e, d);
      if (v) s.extends = *v;
      else s.broken = true;
    }
    index.emplace(p.key, srcs.size());
    names.push_back(yaml::printable(p.key));
    srcs.push_back(std::move(s));
  }
  const std::string defined = yaml::join(names);
  for (size_t i = 0; i < srcs.size(); ++i)
    if (!srcs[i].broken) walk_chain(srcs, i, index, defined, d);

  // Parents first: a profile `hops` links down is built on one `hops - 1` down.
  std::vector<std::optional<Profile>> resolved(srcs.size());
  for (int h = 0; h <= kMaxExtendsDepth; ++h) {
    for (size_t i = 0; i < srcs.size(); ++i) {
      const Source& s = srcs[i];
      if (s.broken || s.hops != h) continue;
      Profile base = s.extends.empty() ? builtin_profile() : *resolved[index.at(s.extends)];
      base.name = s.name;
      base.extends = s.extends;
      base.mark = s.mark;
      detail::apply_profile(s.body, s.extends, base, d);
      resolved[i] = std::move(base);
    }
  }
  for (size_t i = 0; i < srcs.size(); ++i) {
    if (!srcs[i].broken) continue;
    // Its own keys still get checked (the policy fails either way).
    Profile base = builtin_profile();
    base.name = srcs[i].name;
    base.extends = srcs[i].extends;
    base.mark = srcs[i].mark;
    detail::apply_profile(srcs[i].body, "", base, d);
    resolved[i] = std::move(base);
  }
  for (auto& p : resolved) pol.profiles.push_back(std::move(*p));
}

bool is_trigger(const std::string& s) {
  return std::any_of(std::begin(kTriggers), std::end(kTriggers), [&](const char* t) { return s == t; });
}

void parse_match(const Entry& m, RuleMatch& out, const std::set<std::string>& key_names, Diagnostics& d) {
  if (!yaml::expect_map(m, d)) return;
  const auto es = yaml::entries(m.value, d);
  if (es.empty())
    d.error(m.mark, "`match` is empty: a rule that tests nothing is the default, which is written without `match`",
            "project, branch, tag, trigger, job, signed_by");
  for (const auto& e : es) {
    std::vector<std::string>* field = e.key == "project" ? &out.project
                                      : e.key == "branch" ? &out.branch
                                      : e.key == "tag"    ? &out.tag
                                      : e.key == "trigger" ? &out.trigger
                                      : e.key == "job"     ? &out.job
                                      : e.key == "signed_by" ? &out.signed_by
                                                             : nullptr;
    if (!field) {
      d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in `match`",
              "project, branch, tag, trigger, job, signed_by");
      continue;
    }
    std::vector<YAML::Node> items;
    if (e.value.IsSequence()) {
      if (e.value.size() == 0 || e.value.size() > kMaxPatterns) {
        d.error(yaml::value_mark(e.value, e.mark), quoted(e.key) + " lists " + std::to_string(e.value.size()) +
                                                       " values", "1 to " + std::to_string(kMaxPatterns) + " values");
        continue;
      }
      for (const auto& item : e.value) items.push_back(item);
    } else {
      items.push_back(e.value);
    }
    for (const auto& item : items) {
      auto v = yaml::get_string(item, "a value of " + quoted(e.key), d, yaml::Text::SingleLine,
                                e.value.IsSequence() ? Mark{} : e.mark);
      if (!v) continue;
      const Mark at = yaml::value_mark(item, e.mark);
      if (e.key == "trigger") {
        if (!is_trigger(*v)) {
          std::vector<std::string> all(std::begin(kTriggers), std::end(kTriggers));
          d.error(at, "trigger " + yaml::describe(item) + " is not known", yaml::join(all));
          continue;
        }
      } else if (e.key == "signed_by") {
        if (!detail::valid_profile_name(*v)) {
          d.error(at, "key name " + yaml::describe(item) + " is not valid", "1 to 64 of letters, digits, _, - and .");
          continue;
        }
        // A signer no key can prove would make the rule dead: say so now,
        // not when a release job falls through to another profile.
        if (!key_names.count(*v)) {
          const std::vector<std::string> known(key_names.begin(), key_names.end());
          d.error(at, "signed_by `" + yaml::printable(*v) + "` matches no key in signatures.trusted_keys",
                  known.empty() ? "a key listed under signatures.trusted_keys (none is listed)"
                                : "one of: " + yaml::join(known));
          continue;
        }
      } else if (v->empty() || v->size() > 256) {
        d.error(at, "a pattern in " + quoted(e.key) + " must be 1 to 256 bytes", "a glob such as \"acme/*\" or \"release/**\"");
        continue;
      }
      field->push_back(*v);
    }
  }
}

void parse_rules(const Entry& section, Policy& pol, const std::set<std::string>& key_names, Diagnostics& d) {
  pol.rules_written = true;
  if (!yaml::expect_list(section, d)) return;
  const size_t n = section.value.size();
  const std::string end_with = "end the rules with a default: `- profile: NAME` (no match)";
  if (n == 0) {
    d.error(section.mark, "`rules` lists no rules, so no job could get a profile", end_with);
    return;
  }
  if (n > kMaxRules) {
    d.error(section.mark, "`rules` lists more than " + std::to_string(kMaxRules) + " rules",
            "at most " + std::to_string(kMaxRules));
    return;
  }
  std::vector<std::string> names;
  for (const auto& p : pol.profiles) names.push_back(yaml::printable(p.name));
  for (size_t i = 0; i < n; ++i) {
    const YAML::Node item = section.value[i];
    Rule r;
    r.mark = yaml::to_mark(item.Mark());
    if (!yaml::expect_map(item, "a rule", d)) continue;
    bool has_match = false, has_profile = false;
    for (const auto& e : yaml::entries(item, d)) {
      if (e.key == "profile") {
        has_profile = true;
        auto v = yaml::get_string(e, d);
        if (v && !pol.find(*v))
          d.error(yaml::value_mark(e.value, e.mark), "there is no profile " + yaml::describe(e.value) + " in this policy",
                  "one of: " + yaml::join(names));
        else if (v) r.profile = *v;
      } else if (e.key == "match") {
        has_match = true;
        parse_match(e, r.match, key_names, d);
      } else {
        d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in a rule", "match, profile");
      }
    }
    if (!has_profile) d.error(r.mark, "a rule needs `profile:` (the profile the jobs it matches get)", "profile: NAME");
    if (!has_match && i + 1 < n)
      d.error(r.mark, "a rule without `match` matches every job: the " + std::to_string(n - i - 1) +
                          " rule(s) after it would never be used", end_with);
    if (has_match && i + 1 == n) d.error(r.mark, "the last rule must be the default, a rule without `match`", end_with);
    pol.rules.push_back(std::move(r));
  }
}

// Standard base64 of exactly 32 bytes and nothing else: decoding and
// encoding again must give the text back, which refuses whitespace, the
// URL-safe alphabet and non-zero padding bits.
std::optional<std::array<unsigned char, 32>> decode_public_key(const std::string& b64) {
  if (b64.size() != 44) return std::nullopt;
  unsigned char raw[33];  // EVP_DecodeBlock counts the padding as a byte
  if (EVP_DecodeBlock(raw, reinterpret_cast<const unsigned char*>(b64.data()), 44) != 33) return std::nullopt;
  TrustedKey k;
  std::copy(raw, raw + 32, k.public_key.begin());
  if (public_key_base64(k) != b64) return std::nullopt;
  return k.public_key;
}

// One entry of `trusted_keys`. Its name goes into `names` even when its key
// is bad, so rules naming it are not reported a second time.
void parse_trusted_key(const YAML::Node& item, Signatures& sig, std::set<std::string>& names, Diagnostics& d) {
  if (!yaml::expect_map(item, "a trusted key", d)) return;
  TrustedKey key;
  key.mark = yaml::to_mark(item.Mark());
  std::optional<std::string> name, b64;
  Mark name_at, key_at;
  bool has_name = false, has_key = false;
  for (const auto& e : yaml::entries(item, d)) {
    if (e.key == "name") {
      has_name = true;
      name_at = yaml::value_mark(e.value, e.mark);
      name = yaml::get_string(e, d);
    } else if (e.key == "ed25519") {
      has_key = true;
      key_at = yaml::value_mark(e.value, e.mark);
      b64 = yaml::get_string(e, d);
    } else {
      d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in a trusted key", "name, ed25519");
    }
  }
  const std::string make = "ed25519: BASE64 (the public key `gatehouse sign --generate-key` prints)";
  if (!has_name) d.error(key.mark, "a trusted key needs `name:` (what rules' `signed_by` names)", "name: release-key");
  if (!has_key) d.error(key.mark, "a trusted key needs `ed25519:` (its public key)", make);
  bool good = name && b64;
  if (name) {
    if (!valid_key_name(*name)) {
      d.error(name_at, "key name " + yaml::describe(YAML::Node(*name)) + " is not valid",
              "1 to 64 of a-z, 0-9, ., _ and -, starting with a letter or digit");
      good = false;
    } else if (!names.insert(*name).second) {
      d.error(name_at, "trusted key `" + *name + "` is listed twice", "each name once");
      good = false;
    }
  }
  if (b64) {
    const auto raw = decode_public_key(*b64);
    if (!raw) {
      d.error(key_at, "`ed25519` must be the base64 of a 32-byte Ed25519 public key (44 characters ending in `=`)", make);
      good = false;
    } else if (small_order_public_key(*raw)) {
      d.error(key_at, "`ed25519` is not a usable public key (a point of small order, e.g. a placeholder of zeros): "
                      "signatures under it could be forged for any job", make);
      good = false;
    } else {
      key.public_key = *raw;
      for (const auto& other : sig.trusted_keys)
        if (other.public_key == key.public_key) {
          // A signature naming no key must give one signer, or rules could disagree on who signed.
          d.error(key_at, "this public key is already trusted as `" + other.name + "`", "each key once, under one name");
          good = false;
        }
    }
  }
  if (good) {
    key.name = *name;
    sig.trusted_keys.push_back(std::move(key));
  }
}

void parse_signatures(const Entry& section, Signatures& sig, std::set<std::string>& names, Diagnostics& d) {
  sig.mark = section.mark;
  if (!yaml::expect_map(section, d)) return;
  for (const auto& e : yaml::entries(section.value, d)) {
    if (e.key == "required") {
      if (auto v = yaml::get_bool(e, d)) sig.required = *v;
    } else if (e.key == "trusted_keys") {
      if (!yaml::expect_list(e, d)) continue;
      if (e.value.size() > kMaxTrustedKeys) {
        d.error(yaml::value_mark(e.value, e.mark), "`trusted_keys` lists " + std::to_string(e.value.size()) + " keys",
                "at most " + std::to_string(kMaxTrustedKeys));
        continue;
      }
      for (const auto& item : e.value) parse_trusted_key(item, sig, names, d);
    } else {
      d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " in `signatures`", "required, trusted_keys");
    }
  }
}

void parse_into(Policy& pol, const std::string& text, Diagnostics& d) {
  if (text.size() > kMaxPolicyFileBytes) {
    d.error({}, "the policy file is " + std::to_string(text.size()) + " bytes, more than the limit of " +
                    std::to_string(kMaxPolicyFileBytes / 1024) + " KiB", "policy files of at most 1 MiB");
    return;
  }
  auto root = yaml::load(text, d);
  if (!root) return;
  if (!yaml::expect_map(*root, "the top level of a policy file", d, {1, 1})) return;
  bool has_version = false;
  std::optional<Entry> profiles, rules;
  std::set<std::string> key_names;
  for (const auto& e : yaml::entries(*root, d)) {
    if (e.key == "version") {
      has_version = true;
      auto v = yaml::get_string(e, d);
      if (v && *v != "1")
        d.error(yaml::value_mark(e.value, e.mark),
                "policy version " + yaml::describe(e.value) + " is not supported by this build", "version: 1");
    } else if (e.key == "secrets_dir") {
      if (auto v = detail::abs_path(e.value, "`secrets_dir`", d, e.mark)) pol.secrets_dir = *v;
    } else if (e.key == "audit") {
      if (!yaml::expect_map(e, d)) continue;
      for (const auto& a : yaml::entries(e.value, d)) {
        if (a.key != "log") {
          d.error(a.mark, "unknown key " + yaml::describe(YAML::Node(a.key)) + " in `audit`", "log");
        } else if (auto v = detail::abs_path(a.value, "`log`", d, a.mark)) {
          pol.audit.log = *v;
        }
      }
    } else if (e.key == "signatures") {
      parse_signatures(e, pol.signatures, key_names, d);
    } else if (e.key == "profiles") {
      profiles = e;
    } else if (e.key == "rules") {
      rules = e;
    } else {
      d.error(e.mark, "unknown key " + yaml::describe(YAML::Node(e.key)) + " at the top level", kTopKeys);
    }
  }
  const Mark top = yaml::to_mark(root->Mark());
  if (!has_version) d.error(top, "the policy file has no `version:`", "version: 1");
  if (!profiles) {
    d.error(top, "the policy file has no `profiles:`", "profiles: {NAME: {...}}");
    return;
  }
  parse_profiles(*profiles, pol, d);
  if (rules) {
    parse_rules(*rules, pol, key_names, d);
  } else {
    pol.rules.push_back(Rule{{}, "default", profiles->mark});
    if (!pol.profiles.empty() && !pol.find("default"))
      d.error(profiles->mark, "there is no profile `default`, which every job gets when the policy has no `rules:`",
              "a profile named default, or `rules:` that pick a profile");
  }
}

}  // namespace


Policy builtin_policy() {
  Policy p;
  Profile prof = builtin_profile();
  prof.name = "default";
  p.profiles.push_back(std::move(prof));
  p.rules.push_back(Rule{{}, "default", {}});
  return p;
}

PolicyOutcome parse_policy_text(const std::string& display_path, const std::string& text) {
  PolicyOutcome out{std::nullopt, Diagnostics(display_path)};
  if (text.size() <= kMaxPolicyFileBytes) out.diagnostics.set_text(yaml::for_display(text));
  Policy pol;
  try {
    parse_into(pol, text, out.diagnostics);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("internal error while reading the policy: ") + e.what(), "");
  } catch (...) {
    out.diagnostics.error({}, "internal error while reading the policy", "");
  }
  if (!out.diagnostics.has_errors()) out.policy = std::move(pol);
  return out;
}

PolicyOutcome parse_policy_file(const std::string& path) {
  PolicyOutcome out{std::nullopt, Diagnostics(path)};
  try {
    auto text = yaml::read_file_limited(path, kMaxPolicyFileBytes, "policy file " + path, out.diagnostics);
    if (!text) return out;
    return parse_policy_text(path, *text);
  } catch (const std::exception& e) {
    out.diagnostics.error({}, std::string("cannot read the policy file: ") + e.what(), "");
  }
  return out;
}

ReloadResult reload_policy(const std::string& path, Policy& current) {
  auto parsed = parse_policy_file(path);
  ReloadResult r{false, policy_digest(current), "", std::move(parsed.diagnostics)};
  if (parsed.policy) {
    r.new_digest = policy_digest(*parsed.policy);
    current = std::move(*parsed.policy);
    r.replaced = true;
  }
  return r;
}

}  // namespace gh::policy
