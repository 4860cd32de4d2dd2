#include "docker/image_ref.hpp"

#include <algorithm>
#include <cstddef>
#include <vector>

namespace gh::docker {

namespace {

constexpr size_t kNameTotalLengthMax = 255;

bool lower_alnum(char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'); }
bool alnum(char c) { return lower_alnum(c) || (c >= 'A' && c <= 'Z'); }
bool word(char c) { return alnum(c) || c == '_'; }
bool hex_lower(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }

// path-component := [a-z0-9]+ (separator [a-z0-9]+)*, separator := "." | "_" | "__" | "-"+
bool valid_path_component(std::string_view c) {
  size_t i = 0;
  if (c.empty() || !lower_alnum(c[0])) return false;
  while (i < c.size()) {
    while (i < c.size() && lower_alnum(c[i])) ++i;
    if (i == c.size()) return true;
    size_t j = i;
    while (j < c.size() && !lower_alnum(c[j])) ++j;
    std::string_view sep = c.substr(i, j - i);
    bool dashes = sep.find_first_not_of('-') == std::string_view::npos;
    if (!(sep == "." || sep == "_" || sep == "__" || dashes)) return false;
    if (j == c.size()) return false;  // a name ends with a letter or digit
    i = j;
  }
  return true;
}

// domain := component ("." component)* [":" port]; IPv6 literals are not
// accepted (refusing more than the daemon is the safe side).
bool valid_domain(std::string_view d) {
  size_t colon = d.find(':');
  std::string_view host = d.substr(0, colon);
  if (colon != std::string_view::npos) {
    std::string_view port = d.substr(colon + 1);
    if (port.empty()) return false;
    for (char c : port)
      if (c < '0' || c > '9') return false;
  }
  if (host.empty()) return false;
  size_t start = 0;
  for (;;) {
    size_t dot = host.find('.', start);
    std::string_view part = host.substr(start, dot == std::string_view::npos ? std::string_view::npos : dot - start);
    if (part.empty() || !alnum(part.front()) || !alnum(part.back())) return false;
    for (char c : part)
      if (!alnum(c) && c != '-') return false;
    if (dot == std::string_view::npos) return true;
    start = dot + 1;
  }
}

bool valid_tag(std::string_view t) {
  if (t.empty() || t.size() > 128 || !word(t[0])) return false;
  for (char c : t)
    if (!word(c) && c != '.' && c != '-') return false;
  return true;
}

// Only the algorithms the daemon can verify; anything else it refuses.
bool valid_digest(std::string_view d) {
  size_t colon = d.find(':');
  if (colon == std::string_view::npos) return false;
  std::string_view alg = d.substr(0, colon), hex = d.substr(colon + 1);
  size_t want = alg == "sha256" ? 64 : alg == "sha384" ? 96 : alg == "sha512" ? 128 : 0;
  if (want == 0 || hex.size() != want) return false;
  for (char c : hex)
    if (!hex_lower(c)) return false;
  return true;
}

bool is_id(std::string_view ref) {
  if (ref.size() == 64) {
    bool all_hex = true;
    for (char c : ref) all_hex = all_hex && hex_lower(c);
    if (all_hex) return true;
  }
  return valid_digest(ref);
}

bool has_glob(std::string_view p) { return p.find_first_of("*?") != std::string_view::npos; }

}  // namespace

std::string normalise_image(std::string_view ref) {
  if (ref.empty() || is_id(ref)) return "";
  std::string_view name = ref, tag, digest;
  if (size_t at = ref.find('@'); at != std::string_view::npos) {
    name = ref.substr(0, at);
    digest = ref.substr(at + 1);
    if (!valid_digest(digest)) return "";
  }
  size_t slash = name.rfind('/');
  size_t colon = name.rfind(':');
  if (colon != std::string_view::npos && (slash == std::string_view::npos || colon > slash)) {
    tag = name.substr(colon + 1);
    name = name.substr(0, colon);
    if (!valid_tag(tag)) return "";
  }
  if (name.empty()) return "";

  std::string domain, remainder;
  size_t first = name.find('/');
  std::string_view head = name.substr(0, first);
  bool head_is_domain = first != std::string_view::npos &&
                        (head.find_first_of(".:") != std::string_view::npos || head == "localhost" ||
                         head.find_first_of("ABCDEFGHIJKLMNOPQRSTUVWXYZ") != std::string_view::npos);
  if (head_is_domain) {
    domain = std::string(head);
    remainder = std::string(name.substr(first + 1));
    if (!valid_domain(domain)) return "";
  } else {
    domain = "docker.io";
    remainder = std::string(name);
  }
  if (domain == "index.docker.io") domain = "docker.io";
  if (domain == "docker.io" && remainder.find('/') == std::string::npos) remainder = "library/" + remainder;

  size_t start = 0;
  for (;;) {
    size_t end = remainder.find('/', start);
    std::string_view part = std::string_view(remainder).substr(start, end == std::string::npos ? std::string::npos : end - start);
    if (!valid_path_component(part)) return "";
    if (end == std::string::npos) break;
    start = end + 1;
  }

  std::string out = domain + "/" + remainder;
  if (out.size() > kNameTotalLengthMax) return "";
  if (!tag.empty()) out += ":" + std::string(tag);
  else if (digest.empty()) out += ":latest";
  if (!digest.empty()) out += "@" + std::string(digest);
  return out;
}

bool glob_match(std::string_view pattern, std::string_view text) {
  // ok[j]: the pattern read so far matches text[0, j). One pass per
  // pattern token keeps the cost at |pattern| x |text| whatever the stars.
  std::vector<char> ok(text.size() + 1, 0), next(text.size() + 1, 0);
  ok[0] = 1;
  size_t i = 0;
  while (i < pattern.size()) {
    std::fill(next.begin(), next.end(), 0);
    if (pattern[i] == '*') {
      bool cross = i + 1 < pattern.size() && pattern[i + 1] == '*';
      i += cross ? 2 : 1;
      while (i < pattern.size() && pattern[i] == '*') ++i;  // "***" reads as "**"
      bool reach = false;
      for (size_t j = 0; j <= text.size(); ++j) {
        if (ok[j]) reach = true;
        next[j] = reach;
        if (j < text.size() && !cross && text[j] == '/') reach = false;
      }
    } else {
      char p = pattern[i++];
      for (size_t j = 0; j < text.size(); ++j)
        if (ok[j] && (p == '?' ? text[j] != '/' : text[j] == p)) next[j + 1] = 1;
    }
    ok.swap(next);
  }
  return ok[text.size()] != 0;
}

bool image_allowed(const std::vector<std::string>& patterns, std::string_view ref) {
  std::string full = normalise_image(ref);
  if (full.empty()) return false;
  for (const auto& p : patterns) {
    if (has_glob(p)) {
      if (glob_match(p, full)) return true;
    } else {
      std::string np = normalise_image(p);
      if (!np.empty() && np == full) return true;
    }
  }
  return false;
}

}  // namespace gh::docker
