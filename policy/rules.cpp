// Rule selection: which profile a job runs under.
//
// The job's metadata is partly attacker-chosen (a fork's branch name), so
// matching must cost the same whatever it is given: glob_match runs the
// pattern as a set of states over the text, one pass, O(pattern x text),
// never the backtracking that makes "*a*a*a*a*b" exponential.
#include <algorithm>
#include <string>
#include <string_view>
#include <vector>

#include "policy/policy.hpp"

namespace gh::policy {

namespace {

enum class Tok { Literal, One, Star, Globstar };
struct Token {
  Tok kind;
  std::string_view text;  // the character, for Literal
};

// The length of the UTF-8 sequence starting at s[i] (1 for a stray byte),
// so `?` takes a whole character and never half of one.
size_t char_len(std::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  const size_t n = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3 : (c & 0xF8) == 0xF0 ? 4 : 1;
  return std::min(n, s.size() - i);
}

std::vector<Token> tokens(std::string_view p) {
  std::vector<Token> out;
  for (size_t i = 0; i < p.size();) {
    if (p[i] == '*') {
      const bool globstar = i + 1 < p.size() && p[i + 1] == '*';
      out.push_back({globstar ? Tok::Globstar : Tok::Star, {}});
      i += globstar ? 2 : 1;
    } else if (p[i] == '?') {
      out.push_back({Tok::One, {}});
      ++i;
    } else {
      const size_t n = char_len(p, i);
      out.push_back({Tok::Literal, p.substr(i, n)});
      i += n;
    }
  }
  return out;
}

// A star may match nothing: being before it means being after it too.
void close_over_stars(const std::vector<Token>& t, std::vector<char>& states) {
  for (size_t i = 0; i < t.size(); ++i)
    if (states[i] && (t[i].kind == Tok::Star || t[i].kind == Tok::Globstar)) states[i + 1] = 1;
}

bool matches(const std::vector<std::string>& patterns, const std::string& value, bool exact) {
  if (patterns.empty()) return true;  // the rule does not test this field
  if (value.empty()) return false;    // not known: never matches a test
  return std::any_of(patterns.begin(), patterns.end(),
                     [&](const std::string& p) { return exact ? p == value : glob_match(p, value); });
}

}  // namespace

bool glob_match(const std::string& pattern, const std::string& text) {
  const std::vector<Token> t = tokens(pattern);
  // states[i]: some prefix of the text read so far leaves token i next.
  std::vector<char> states(t.size() + 1, 0), next(t.size() + 1, 0);
  states[0] = 1;
  close_over_stars(t, states);
  const std::string_view s(text);
  for (size_t pos = 0; pos < s.size();) {
    const size_t n = char_len(s, pos);
    const std::string_view ch = s.substr(pos, n);
    pos += n;
    const bool slash = ch == "/";
    std::fill(next.begin(), next.end(), 0);
    bool any = false;
    for (size_t i = 0; i < t.size(); ++i) {
      if (!states[i]) continue;
      switch (t[i].kind) {
        case Tok::Literal:
          if (t[i].text == ch) next[i + 1] = 1, any = true;
          break;
        case Tok::One:
          if (!slash) next[i + 1] = 1, any = true;
          break;
        case Tok::Star:
          if (!slash) next[i] = 1, any = true;
          break;
        case Tok::Globstar:
          next[i] = 1, any = true;
          break;
      }
    }
    if (!any) return false;
    close_over_stars(t, next);
    states.swap(next);
  }
  return states[t.size()] != 0;
}

const Profile* Policy::find(const std::string& name) const {
  for (const auto& p : profiles)
    if (p.name == name) return &p;
  return nullptr;
}

Selection select_profile(const Policy& p, const JobMeta& meta) {
  for (size_t i = 0; i < p.rules.size(); ++i) {
    const RuleMatch& m = p.rules[i].match;
    // Triggers and signers are names, not patterns: "*" must not mean "any signer".
    if (matches(m.project, meta.project, false) && matches(m.branch, meta.branch, false) &&
        matches(m.tag, meta.tag, false) && matches(m.trigger, meta.trigger, true) && matches(m.job, meta.job, false) &&
        matches(m.signed_by, meta.signed_by, true))
      return Selection{i, p.find(p.rules[i].profile)};
  }
  return Selection{p.rules.size(), nullptr};
}

}  // namespace gh::policy
