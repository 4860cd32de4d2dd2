// Value checks of the policy language: paths, names, host:port patterns,
// globs. Each returns what is wrong in words (empty when fine) or a bool,
// so the section parsers in profile_parse.cpp can say it at the value's
// line:col.
#include <arpa/inet.h>
#include <openssl/evp.h>

#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

#include "policy/policy.hpp"
#include "policy/values.hpp"

namespace gh::policy::detail {

namespace {

// Host paths a job must never be able to write: the system itself, the
// kernel's views, and gatehouse's own state. An ancestor of one of these is
// as bad (a writable /var holds /var/lib/gatehouse).
constexpr std::string_view kProtected[] = {"/etc", "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
                                           "/boot", "/proc", "/sys", "/dev", "/root", "/run", "/var/run",
                                           "/var/lib/gatehouse", "/etc/gatehouse"};

bool under(std::string_view p, std::string_view dir) {
  return p.size() > dir.size() && p.substr(0, dir.size()) == dir && p[dir.size()] == '/';
}

}  // namespace

// Empty when p is an absolute path in normal form, else what is wrong.
std::string path_problem(const std::string& p) {
  if (p.empty() || p[0] != '/') return "is not an absolute path";
  if (p.size() > 4095) return "is longer than 4095 bytes";
  if (p.size() > 1 && p.back() == '/') return "ends in `/`";
  for (size_t i = 1; i <= p.size();) {
    size_t j = p.find('/', i);
    if (j == std::string::npos) j = p.size();
    const std::string_view part(p.data() + i, j - i);
    if (part.empty() && p.size() > 1) return "has an empty component (`//`)";
    if (part == "." || part == "..") return "has a `" + std::string(part) + "` component";
    i = j + 1;
  }
  return {};
}


// The protected directory p is, is inside of, or holds; empty if none.
std::string_view touches_protected(const std::string& p) {
  if (p == "/") return "/";
  for (auto prot : kProtected)
    if (p == prot || under(p, prot) || under(prot, p)) return prot;
  return {};
}

bool valid_env_name(const std::string& s) {
  if (s.empty() || s.size() > 256 || std::isdigit(static_cast<unsigned char>(s[0]))) return false;
  return std::all_of(s.begin(), s.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; });
}

bool valid_user_name(const std::string& s) {
  if (s.empty() || s.size() > 32) return false;
  if (!((s[0] >= 'a' && s[0] <= 'z') || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(),
                     [](char c) { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_' || c == '-'; });
}

// Secret names and /run/secrets file names: a plain file name that is never
// `.`, `..` or hidden.
bool valid_secret_name(const std::string& s) {
  if (s.empty() || s.size() > 64 || s[0] == '.') return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

std::string port_problem(std::string_view p, bool star_ok) {
  if (star_ok && p == "*") return {};
  auto number = [](std::string_view s, unsigned& v) {
    if (s.empty() || s.size() > 5 || !std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      return false;
    v = static_cast<unsigned>(std::stoul(std::string(s)));
    return v >= 1 && v <= 65535;
  };
  unsigned lo = 0, hi = 0;
  const size_t dash = p.find('-');
  if (dash == std::string_view::npos) return number(p, lo) ? "" : "has no valid port (1-65535)";
  if (!number(p.substr(0, dash), lo) || !number(p.substr(dash + 1), hi)) return "has no valid port range";
  return lo <= hi ? "" : "has a port range that runs backwards";
}

std::string host_problem(std::string_view h) {
  auto prefix_len = [](std::string_view s, unsigned max) {
    if (s.empty() || s.size() > 3 || !std::all_of(s.begin(), s.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
      return false;
    return std::stoul(std::string(s)) <= max;
  };
  unsigned char buf[16];
  if (!h.empty() && h[0] == '[') {
    const size_t close = h.find(']');
    if (close == std::string_view::npos) return "has no closing `]`";
    if (inet_pton(AF_INET6, std::string(h.substr(1, close - 1)).c_str(), buf) != 1) return "is not an IPv6 address";
    const std::string_view rest = h.substr(close + 1);
    if (rest.empty() || (rest[0] == '/' && prefix_len(rest.substr(1), 128))) return {};
    return "has a bad IPv6 prefix length (0-128)";
  }
  if (const size_t slash = h.find('/'); slash != std::string_view::npos) {
    if (inet_pton(AF_INET, std::string(h.substr(0, slash)).c_str(), buf) != 1 || !prefix_len(h.substr(slash + 1), 32))
      return "is not an IPv4 network (a.b.c.d/0-32)";
    return {};
  }
  if (inet_pton(AF_INET, std::string(h).c_str(), buf) == 1) return {};
  std::string_view name = h;
  if (name.substr(0, 2) == "*.") name.remove_prefix(2);
  if (name.empty() || name.size() > 253) return "is not a host name";
  size_t start = 0;
  std::string_view last;
  while (start <= name.size()) {
    size_t dot = name.find('.', start);
    if (dot == std::string_view::npos) dot = name.size();
    const std::string_view label = name.substr(start, dot - start);
    if (label.empty() || label.size() > 63 || label.front() == '-' || label.back() == '-' ||
        !std::all_of(label.begin(), label.end(), [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '-'; }))
      return "is not a host name (labels of letters, digits and -; only a leading `*.` wildcard)";
    last = label;
    start = dot + 1;
  }
  if (std::all_of(last.begin(), last.end(), [](char ch) { return ch >= '0' && ch <= '9'; }))
    return "is neither an IPv4 address nor a host name";
  return {};
}

std::string host_port_problem(const std::string& s) {
  if (s.size() > 300) return "is longer than 300 bytes";
  const size_t colon = s.rfind(':');
  if (colon == std::string::npos || (s[0] == '[' && colon < s.find(']'))) return "has no `:port`";
  if (auto why = host_problem(std::string_view(s).substr(0, colon)); !why.empty()) return why;
  return port_problem(std::string_view(s).substr(colon + 1), true);
}

std::string glob_problem(const std::string& s) {
  if (s.empty()) return "is empty";
  return s.size() > 256 ? "is longer than 256 bytes" : "";
}

// CircleCI's image names (`ubuntu-2204:2024.01.1`) and resource classes
// (`2xlarge+`, `arm.medium`, `acme/linux-large`: the control plane allows
// up to 128 of A-Z a-z 0-9 . _ / -, protocol/names.cpp) and globs of them.
std::string machine_pattern_problem(const std::string& s) {
  if (s.empty()) return "is empty";
  if (s.size() > 128) return "is longer than 128 bytes";
  const bool ok = std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '_' || c == '-' || c == '+' || c == ':' ||
           c == '/' || c == '*' || c == '?';
  });
  return ok ? "" : "has a character other than A-Z a-z 0-9 . _ - + : / * ?";
}

bool valid_profile_name(const std::string& s) {
  if (s.empty() || s.size() > 64) return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-' || c == '.';
  });
}

}  // namespace gh::policy::detail

namespace gh::policy {

// The points of small order (sign bit cleared; the last three are
// non-canonical spellings of 0, -1 and 1; the list is libsodium's). A
// placeholder key such as "AAAA...=" is one of them.
bool small_order_public_key(const std::array<unsigned char, 32>& key) {
  static constexpr unsigned char kSmallOrder[][32] = {
      {0},
      {1},
      {0x26, 0xe8, 0x95, 0x8f, 0xc2, 0xb2, 0x27, 0xb0, 0x45, 0xc3, 0xf4, 0x89, 0xf2, 0xef, 0x98, 0xf0,
       0xd5, 0xdf, 0xac, 0x05, 0xd3, 0xc6, 0x33, 0x39, 0xb1, 0x38, 0x02, 0x88, 0x6d, 0x53, 0xfc, 0x05},
      {0xc7, 0x17, 0x6a, 0x70, 0x3d, 0x4d, 0xd8, 0x4f, 0xba, 0x3c, 0x0b, 0x76, 0x0d, 0x10, 0x67, 0x0f,
       0x2a, 0x20, 0x53, 0xfa, 0x2c, 0x39, 0xcc, 0xc6, 0x4e, 0xc7, 0xfd, 0x77, 0x92, 0xac, 0x03, 0x7a},
      {0xec, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
      {0xed, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
      {0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
       0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f},
  };
  std::array<unsigned char, 32> k = key;
  k[31] &= 0x7f;
  return std::any_of(std::begin(kSmallOrder), std::end(kSmallOrder),
                     [&](const unsigned char(&p)[32]) { return std::equal(k.begin(), k.end(), p); });
}


std::string public_key_base64(const TrustedKey& k) {
  unsigned char out[45];  // 4 * ceil(32 / 3) and a NUL
  const int n = EVP_EncodeBlock(out, k.public_key.data(), static_cast<int>(k.public_key.size()));
  return std::string(reinterpret_cast<const char*>(out), n > 0 ? static_cast<size_t>(n) : 0);
}

}  // namespace gh::policy
