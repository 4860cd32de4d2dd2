// Text helpers shared by the operator tools (canonical.cpp, explain.cpp,
// diff.cpp, lint.cpp): one quoting rule and one way to spell sizes, times
// and modes, so `explain`, `diff` and the canonical form never disagree.
#pragma once

#include <charconv>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/policy.hpp"
#include "policy/profile.hpp"

namespace gh::policy::text {

// A YAML double-quoted scalar that reads back as exactly `s`: quotes and
// backslashes escaped, every control character (C0, DEL, C1) and the Unicode
// line/paragraph separators and BOM as escapes, so the result is one line of
// printable text whatever `s` holds. Bytes that are not valid UTF-8 are
// written as \xNN (the parsers refuse them; this only keeps output printable).
inline std::string quote(std::string_view s) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out = "\"";
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; continue;
      case '\\': out += "\\\\"; continue;
      case '\n': out += "\\n"; continue;
      case '\t': out += "\\t"; continue;
      case '\r': out += "\\r"; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7f) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      continue;
    }
    if (c < 0x80) {
      out += static_cast<char>(c);
      continue;
    }
    // A multi-byte UTF-8 sequence: find its length and code point.
    size_t len = c >= 0xf0 ? 4 : c >= 0xe0 ? 3 : c >= 0xc0 ? 2 : 0;
    bool valid = len != 0 && i + len <= s.size() && c < 0xf5;
    uint32_t cp = valid ? (c & (0x7fu >> len)) : 0;
    for (size_t k = 1; valid && k < len; ++k) {
      const auto cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xc0) != 0x80) valid = false;
      cp = (cp << 6) | (cc & 0x3fu);
    }
    if (!valid) {
      out += "\\x";
      out += kHex[c >> 4];
      out += kHex[c & 15];
      continue;
    }
    if ((cp >= 0x80 && cp <= 0x9f) || cp == 0x2028 || cp == 0x2029 || cp == 0xfeff) {
      out += "\\u";
      for (int shift = 12; shift >= 0; shift -= 4) out += kHex[(cp >> shift) & 15];
    } else {
      out.append(s.substr(i, len));
    }
    i += len - 1;
  }
  out += '"';
  return out;
}

// `s` as is when quoting would change nothing but the quotes (names, paths,
// patterns), otherwise quoted: explain and diff show values from the file
// without letting one rewrite the operator's terminal.
inline std::string shown(std::string_view s) {
  const std::string q = quote(s);
  if (!s.empty() && q.size() == s.size() + 2 && s.find(' ') == std::string_view::npos) return std::string(s);
  return q;
}

inline std::string shown_list(const std::vector<std::string>& v, std::string_view empty = "none") {
  if (v.empty()) return std::string(empty);
  std::string out;
  for (const auto& s : v) {
    if (!out.empty()) out += ", ";
    out += shown(s);
  }
  return out;
}

// "4 GiB", "1536 MiB", "1000 bytes": exact, in the largest unit that divides.
inline std::string bytes(uint64_t b) {
  static constexpr struct {
    uint64_t size;
    const char* name;
  } kUnits[] = {{1ull << 40, "TiB"}, {1ull << 30, "GiB"}, {1ull << 20, "MiB"}, {1ull << 10, "KiB"}};
  if (b != 0)
    for (const auto& u : kUnits)
      if (b % u.size == 0) return std::to_string(b / u.size) + " " + u.name;
  return std::to_string(b) + (b == 1 ? " byte" : " bytes");
}

// "3h", "1h30m", "10m", "45s", "2d": as policy files write durations.
inline std::string duration(uint64_t s) {
  if (s == 0) return "0s";
  std::string out;
  const uint64_t parts[] = {s / 86400, s % 86400 / 3600, s % 3600 / 60, s % 60};
  const char units[] = {'d', 'h', 'm', 's'};
  for (size_t i = 0; i < 4; ++i)
    if (parts[i] != 0) out += std::to_string(parts[i]) + units[i];
  return out;
}

// cpus: the shortest decimal that reads back as the same double ("2",
// "0.5", "1.25"), in plain notation (policy files take no exponents).
inline std::string number(double v) {
  char buf[400];
  auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed);
  if (r.ec != std::errc()) return "0";
  return std::string(buf, r.ptr);
}

// "a", "a or b", "a, b or c"
inline std::string alternatives(const std::vector<std::string>& v) {
  std::string out;
  for (size_t i = 0; i < v.size(); ++i) {
    if (i) out += i + 1 == v.size() ? " or " : ", ";
    out += shown(v[i]);
  }
  return out;
}

// "jobs of project acme/* on branch main or release/**"; "all jobs" for an
// empty match ("all other jobs" when rules come before it).
inline std::string rule_condition(const RuleMatch& m, bool first) {
  if (m.empty()) return first ? "all jobs" : "all other jobs";
  std::string out = "jobs";
  const std::pair<const char*, const std::vector<std::string>*> fields[] = {
      {" of project ", &m.project},  {" on branch ", &m.branch}, {" with tag ", &m.tag},
      {" triggered by ", &m.trigger}, {" named ", &m.job},       {" signed by key ", &m.signed_by}};
  for (const auto& [words, values] : fields)
    if (!values->empty()) out += words + alternatives(*values);
  return out;
}

}  // namespace gh::policy::text
