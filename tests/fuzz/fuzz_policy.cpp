// libFuzzer target: the policy parser on arbitrary bytes. It must never
// crash, hang or leak; it must either produce a policy or at least one
// error; and a policy it produces must pick a profile for any job (its last
// rule is a default that names a profile of the file), and its canonical
// form must parse back to the same canonical form (the digest's promise).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "policy/policy.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text(reinterpret_cast<const char*>(data), size);
  auto out = gh::policy::parse_policy_text("fuzz.yaml", text);
  (void)out.diagnostics.render();
  if (!out.policy) {
    if (!out.diagnostics.has_errors()) abort();
    return 0;
  }
  if (out.diagnostics.has_errors()) abort();
  const gh::policy::Policy& p = *out.policy;
  if (p.profiles.empty() || p.rules.empty() || !p.rules.back().match.empty()) abort();
  // The fuzzer's own input as metadata too: glob matching on hostile text.
  const std::string some = text.substr(0, 256);
  for (const gh::policy::JobMeta& meta :
       {gh::policy::JobMeta{"acme/web", "main", "v1.0", "push", "build", "release-key"}, gh::policy::JobMeta{},
        gh::policy::JobMeta{some, some, some, "fork_pull_request", some, some}}) {
    const auto sel = gh::policy::select_profile(p, meta);
    if (!sel.profile || sel.rule_index >= p.rules.size()) abort();
    if (sel.profile != p.find(p.rules[sel.rule_index].profile)) abort();
  }
  const std::string canon = gh::policy::canonical_yaml(p);
  if (canon.size() <= gh::policy::kMaxPolicyFileBytes) {  // inherited lists written out can outgrow the limit
    auto again = gh::policy::parse_policy_text("canonical.yaml", canon);
    if (!again.policy || gh::policy::canonical_yaml(*again.policy) != canon) abort();
  }
  return 0;
}
