// The `HOST:PORT` patterns of `network.allow` and the port lists of
// `docker.proxy.ports`, read into a form that can be compared by what they
// match (docs/policy.md, "Comparing policies"). profile_values.cpp checks
// the text; this reads text that passed those checks.
//
// What a pattern matches:
//   `name.example`      that name, any letter case, nothing else;
//   `*.example.com`     every name that ends in `.example.com` (one or more
//                       labels before it), not `example.com` itself;
//   `10.0.0.0/8`, `10.1.2.3`, `[fd00::]/8`, `[::1]`
//                       the addresses in that network (a bare address is a
//                       network of one);
//   `:443`, `:8000-8100`, `:*`  those ports (`*` is 1-65535).
// A name pattern and an address pattern are never compared: a name may
// resolve to any address, so neither is shown to hold the other.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace gh::policy {

struct PortRange {
  uint16_t lo = 1;
  uint16_t hi = 65535;
};

struct HostPattern {
  enum class Kind : uint8_t { Name, Suffix, V4, V6 };
  Kind kind = Kind::Name;
  std::string name;                 // Name and Suffix: lower case; Suffix without the `*.`
  std::array<uint8_t, 16> addr{};   // V4 in the first 4 bytes, host bits cleared
  unsigned prefix = 0;              // V4: 0-32, V6: 0-128
  PortRange ports;
};

// nullopt for text that detail::port_problem / host_port_problem refuse.
std::optional<PortRange> parse_port_range(const std::string& s);
std::optional<HostPattern> parse_host_pattern(const std::string& s);

// A network.allow list in one spelling of its meaning, for the canonical
// form: names in lower case, networks with host bits cleared (`10.1.2.3/8`
// is `10.0.0.0/8`, `10.1.2.3/32` is `10.1.2.3`), IPv6 as inet_ntop writes
// it, `1-65535` as `*`; one host's ports joined into their fewest ranges,
// less the ports a wider pattern already allows (`*.a.com:443` makes
// `x.a.com:443` say nothing); sorted. Sibling networks are not merged:
// `10.0.0.0/9` and `10.128.0.0/9` stay two entries, not `10.0.0.0/8`.
// Text that does not parse is kept as written. Were the result longer than
// a policy may list (subtracting can split ranges), each pattern is only
// respelled and deduplicated, so the form always parses back.
std::vector<std::string> canonical_host_patterns(const std::vector<std::string>& list);

// A port list as the fewest sorted ranges that hold the same ports
// (`9000-9004`, `9005` is `9000-9005`).
std::vector<std::string> canonical_port_list(const std::vector<std::string>& ports);

// Whether `host` (a name, or an address: 10.1.2.3, fd00::1 without
// brackets) and `port` are what the pattern names.
bool host_pattern_matches(const HostPattern& p, const std::string& host, uint16_t port);

// Every host:port the inner list matches, some pattern of the outer list
// matches too. Sound, not complete: ports are joined across the outer
// patterns whose host part holds the inner one's, but host parts are
// compared one at a time (10.0.0.0/9 and 10.128.0.0/9 are not shown to hold
// 10.0.0.0/8). Text that does not parse is held only by itself.
bool host_patterns_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner);

// Every port of the inner list is in some range of the outer list (the
// ranges are joined, so "9000-9004", "9005" holds "9003-9005").
bool port_lists_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner);

}  // namespace gh::policy
