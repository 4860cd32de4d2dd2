#include "docker/target.hpp"

#include <algorithm>
#include <optional>

namespace gh::docker {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Percent-decoding; nullopt on a malformed escape. `plus_is_space` because
// Go's url.ParseQuery reads '+' as a space in the query but not in the path.
std::optional<std::string> percent_decode(std::string_view s, bool plus_is_space) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    char c = s[i];
    if (c == '%') {
      if (i + 2 >= s.size()) return std::nullopt;
      int hi = hex_value(s[i + 1]), lo = hex_value(s[i + 2]);
      if (hi < 0 || lo < 0) return std::nullopt;
      out += static_cast<char>(hi * 16 + lo);
      i += 2;
    } else if (c == '+' && plus_is_space) {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

bool is_unreserved(unsigned char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' || c == '.' ||
         c == '_' || c == '~';
}

// Only unreserved characters (and ':' '@' in the path, which image
// references carry: "alpine:3.18", "x@sha256:...") stay literal, so the
// daemon's decoder has no choice to make.
std::string percent_encode(std::string_view s, bool path_segment) {
  static constexpr char kHex[] = "0123456789ABCDEF";
  std::string out;
  out.reserve(s.size());
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    if (is_unreserved(c) || (path_segment && (c == ':' || c == '@'))) {
      out += ch;
    } else {
      out += '%';
      out += kHex[c >> 4];
      out += kHex[c & 0x0f];
    }
  }
  return out;
}

bool is_control(unsigned char c) { return c < 0x20 || c == 0x7f; }

// The daemon's router reads a first segment matching v[0-9.]+ as the API
// version; an uppercase V is no version to it, but a client writing one
// means a version, so it is refused rather than sent on as a path.
bool looks_like_version(std::string_view seg) {
  if (seg.size() < 2 || (seg[0] != 'v' && seg[0] != 'V')) return false;
  return std::all_of(seg.begin() + 1, seg.end(), [](char c) { return (c >= '0' && c <= '9') || c == '.'; });
}

Refusal bad(std::string rule, std::string message) { return refuse(std::move(rule), std::move(message), 400); }

std::optional<Refusal> parse_path(std::string_view raw, Target& t) {
  // raw starts with '/'; every '/' starts a segment, so "//" and a trailing
  // '/' both show up as empty segments.
  size_t pos = 1;
  bool first = true;
  for (;;) {
    size_t slash = raw.find('/', pos);
    std::string_view seg = raw.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (seg.empty())
      return bad("path-empty-segment", "the path has an empty segment (`//` or a trailing `/`); the daemon would "
                                       "redirect it to a different path");
    auto decoded = percent_decode(seg, false);
    if (!decoded) return bad("path-encoding", "the path segment `" + std::string(seg) + "` has a malformed % escape");
    if (*decoded == "." || *decoded == "..")
      return bad("path-dot-segment", "the path has a `.` or `..` segment (also when percent-encoded)");
    for (char ch : *decoded) {
      auto c = static_cast<unsigned char>(ch);
      if (c == '/' || c == '\\' || is_control(c) || c >= 0x80)
        return bad("path-encoding", "the path segment `" + std::string(seg) +
                                        "` encodes a slash, a backslash, a control or a non-ASCII byte");
    }
    if (first && looks_like_version(*decoded)) {
      if (*decoded != std::string("v") + kApiVersion)
        return bad("api-version", "the path asks for API version `" + *decoded +
                                      "`; the Gatehouse docker proxy speaks API " + kApiVersion +
                                      " only (set DOCKER_API_VERSION=" + kApiVersion + " or leave it unset)");
      t.versioned = true;
    } else {
      t.segments.push_back(std::move(*decoded));
    }
    first = false;
    if (slash == std::string_view::npos) return std::nullopt;
    pos = slash + 1;
  }
}

std::optional<Refusal> parse_query(std::string_view raw, Target& t) {
  if (raw.find(';') != std::string_view::npos)
    return bad("query-separator", "the query contains `;`, which some readers take as a separator; encode it as %3B");
  size_t pos = 0;
  while (pos <= raw.size()) {
    size_t amp = raw.find('&', pos);
    std::string_view piece = raw.substr(pos, amp == std::string_view::npos ? std::string_view::npos : amp - pos);
    pos = amp == std::string_view::npos ? raw.size() + 1 : amp + 1;
    if (piece.empty()) continue;  // Go skips these too: nothing to disagree on
    size_t eq = piece.find('=');
    auto key = percent_decode(piece.substr(0, eq), true);
    auto value = percent_decode(eq == std::string_view::npos ? std::string_view{} : piece.substr(eq + 1), true);
    if (!key || !value)
      return bad("query-encoding", "the query parameter `" + std::string(piece) + "` has a malformed % escape");
    if (key->empty()) return bad("query-encoding", "the query has a parameter with an empty name");
    auto has_control = [](const std::string& s) {
      return std::any_of(s.begin(), s.end(), [](char c) { return is_control(static_cast<unsigned char>(c)); });
    };
    if (has_control(*key) || has_control(*value))
      return bad("query-encoding", "the query parameter `" + std::string(piece) + "` encodes a control character");
    if (t.param(*key))
      return bad("query-duplicate-key", "the query parameter `" + *key +
                                            "` is given twice; readers differ on which one counts, so give it once");
    t.query.emplace_back(std::move(*key), std::move(*value));
  }
  return std::nullopt;
}

}  // namespace

std::string Target::path() const {
  if (segments.empty()) return "/";
  std::string out;
  for (const auto& s : segments) {
    out += '/';
    out += percent_encode(s, true);
  }
  return out;
}

std::string Target::upstream_target() const {
  std::string out = std::string("/v") + kApiVersion + (segments.empty() ? std::string() : path());
  char sep = '?';
  for (const auto& [k, v] : query) {
    out += sep;
    out += percent_encode(k, false);
    out += '=';
    out += percent_encode(v, false);
    sep = '&';
  }
  return out;
}

const std::string* Target::param(std::string_view key) const {
  for (const auto& kv : query)
    if (kv.first == key) return &kv.second;
  return nullptr;
}

void Target::set_param(std::string key, std::string value) {
  for (auto& kv : query) {
    if (kv.first == key) {
      kv.second = std::move(value);
      return;
    }
  }
  query.emplace_back(std::move(key), std::move(value));
}

void Target::erase_param(std::string_view key) {
  std::erase_if(query, [&](const auto& kv) { return kv.first == key; });
}

Checked<Target> parse_target(std::string_view raw) {
  if (raw.size() > kMaxTargetLength)
    return refuse("target-too-long", "the request target is longer than " + std::to_string(kMaxTargetLength) + " bytes",
                  414);
  if (raw.empty() || raw[0] != '/')
    return bad("target-form", "the request target must be a path starting with `/` (origin-form), not an absolute "
                              "URL, an authority or `*`");
  if (raw.find('#') != std::string_view::npos) return bad("target-form", "the request target contains a fragment `#`");
  size_t q = raw.find('?');
  Target t;
  if (auto r = parse_path(raw.substr(0, q), t)) return std::move(*r);
  if (q != std::string_view::npos)
    if (auto r = parse_query(raw.substr(q + 1), t)) return std::move(*r);
  return t;
}

}  // namespace gh::docker
