// Sizes and durations as written in policy and job files.
//
// Sizes: decimal digits with an optional K, M, G or T suffix (any case, an
// optional trailing `i`: "512M", "2g", "64Ki"), all powers of 1024; plain
// digits are bytes. No "B", no "MB": whether those mean 1000 or 1024 is a
// coin toss, and a limit that is 5% off is a limit nobody meant.
//
// Durations: plain digits are seconds; otherwise one or more <digits><unit>
// with units d, h, m, s in that order, each at most once ("10m", "1h30m",
// "2d"), as CircleCI writes `no_output_timeout`.
//
// Anything else, and anything that overflows 64 bits, is nullopt.
#include <cctype>
#include <cstdint>
#include <limits>
#include <optional>
#include <string>

#include "policy/profile.hpp"

namespace gh::policy {

namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();

// Reads digits at s[i...]; nullopt when there are none or they overflow.
std::optional<uint64_t> digits(const std::string& s, size_t& i) {
  const size_t start = i;
  uint64_t v = 0;
  while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
    const auto d = static_cast<uint64_t>(s[i] - '0');
    if (v > (kMax - d) / 10) return std::nullopt;
    v = v * 10 + d;
    ++i;
  }
  if (i == start) return std::nullopt;
  return v;
}

std::optional<uint64_t> mul(uint64_t a, uint64_t b) {
  if (b != 0 && a > kMax / b) return std::nullopt;
  return a * b;
}

}  // namespace

std::optional<uint64_t> parse_size(const std::string& s) {
  size_t i = 0;
  auto v = digits(s, i);
  if (!v) return std::nullopt;
  if (i == s.size()) return v;
  int shift = 0;
  switch (std::tolower(static_cast<unsigned char>(s[i]))) {
    case 'k': shift = 10; break;
    case 'm': shift = 20; break;
    case 'g': shift = 30; break;
    case 't': shift = 40; break;
    default: return std::nullopt;
  }
  ++i;
  if (i < s.size() && (s[i] == 'i' || s[i] == 'I')) ++i;
  if (i != s.size()) return std::nullopt;
  return mul(*v, uint64_t{1} << shift);
}

std::optional<uint64_t> parse_duration_seconds(const std::string& s) {
  size_t i = 0;
  auto first = digits(s, i);
  if (!first) return std::nullopt;
  if (i == s.size()) return first;

  static constexpr struct {
    char unit;
    uint64_t seconds;
  } kUnits[] = {{'d', 86400}, {'h', 3600}, {'m', 60}, {'s', 1}};
  uint64_t total = 0;
  size_t next_unit = 0;  // units must come in order, each once
  i = 0;
  while (i < s.size()) {
    auto n = digits(s, i);
    if (!n || i == s.size()) return std::nullopt;
    const char u = static_cast<char>(std::tolower(static_cast<unsigned char>(s[i++])));
    size_t k = next_unit;
    while (k < std::size(kUnits) && kUnits[k].unit != u) ++k;
    if (k == std::size(kUnits)) return std::nullopt;
    next_unit = k + 1;
    auto part = mul(*n, kUnits[k].seconds);
    if (!part || *part > kMax - total) return std::nullopt;
    total += *part;
  }
  return total;
}

}  // namespace gh::policy
