// Containment of network.allow patterns and port lists (host_pattern.hpp).
#include "policy/host_pattern.hpp"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>
#include <map>

#include "policy/profile.hpp"
#include "policy/values.hpp"

namespace gh::policy {

namespace {

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Clears the bits past `prefix`, so two spellings of one network compare
// equal (10.1.2.3/8 is 10.0.0.0/8).
void mask(std::array<uint8_t, 16>& a, unsigned prefix, unsigned bits) {
  for (unsigned i = prefix; i < bits; ++i) a[i / 8] = static_cast<uint8_t>(a[i / 8] & ~(0x80u >> (i % 8)));
}

bool host_covers(const HostPattern& o, const HostPattern& i) {
  using K = HostPattern::Kind;
  switch (o.kind) {
    case K::Name:
      return i.kind == K::Name && i.name == o.name;
    case K::Suffix: {
      if (i.kind != K::Name && i.kind != K::Suffix) return false;
      if (i.kind == K::Suffix && i.name == o.name) return true;
      const std::string tail = "." + o.name;
      return i.name.size() > tail.size() && i.name.compare(i.name.size() - tail.size(), tail.size(), tail) == 0;
    }
    case K::V4:
    case K::V6: {
      if (i.kind != o.kind || i.prefix < o.prefix) return false;
      std::array<uint8_t, 16> a = i.addr;
      mask(a, o.prefix, o.kind == K::V4 ? 32 : 128);
      return a == o.addr;
    }
  }
  return false;
}

using Ranges = std::vector<PortRange>;

// Whether the union of `have` holds all of `want`.
bool ranges_cover(Ranges have, const PortRange& want) {
  std::sort(have.begin(), have.end(), [](const PortRange& a, const PortRange& b) { return a.lo < b.lo; });
  unsigned next = want.lo;  // the lowest port of `want` not yet held
  for (const auto& r : have) {
    if (r.lo > next) break;
    if (r.hi >= next) next = static_cast<unsigned>(r.hi) + 1;
    if (next > want.hi) return true;
  }
  return next > want.hi;
}

// The fewest sorted ranges holding the same ports.
Ranges join(Ranges rs) {
  std::sort(rs.begin(), rs.end(), [](const PortRange& a, const PortRange& b) { return a.lo < b.lo; });
  Ranges joined;
  for (const auto& r : rs) {
    if (!joined.empty() && static_cast<unsigned>(joined.back().hi) + 1 >= r.lo)
      joined.back().hi = std::max(joined.back().hi, r.hi);
    else
      joined.push_back(r);
  }
  return joined;
}

// The ports of `have` not in `less`; both joined.
Ranges subtract(const Ranges& have, const Ranges& less) {
  Ranges out;
  for (PortRange r : have) {
    unsigned lo = r.lo;
    for (const auto& l : less) {
      if (l.hi < lo || l.lo > r.hi) continue;
      if (l.lo > lo) out.push_back({static_cast<uint16_t>(lo), static_cast<uint16_t>(l.lo - 1)});
      lo = static_cast<unsigned>(l.hi) + 1;
    }
    if (lo <= r.hi) out.push_back({static_cast<uint16_t>(lo), r.hi});
  }
  return out;
}

std::string port_text(const PortRange& r) {
  if (r.lo == 1 && r.hi == 65535) return "*";
  return r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi);
}

std::string host_text(const HostPattern& p) {
  switch (p.kind) {
    case HostPattern::Kind::Name: return p.name;
    case HostPattern::Kind::Suffix: return "*." + p.name;
    case HostPattern::Kind::V4:
    case HostPattern::Kind::V6: break;
  }
  const bool v4 = p.kind == HostPattern::Kind::V4;
  char buf[INET6_ADDRSTRLEN];
  inet_ntop(v4 ? AF_INET : AF_INET6, p.addr.data(), buf, sizeof buf);
  std::string host = v4 ? std::string(buf) : "[" + std::string(buf) + "]";
  if (p.prefix != (v4 ? 32u : 128u)) host += "/" + std::to_string(p.prefix);
  return host;
}

}  // namespace

std::optional<PortRange> parse_port_range(const std::string& s) {
  if (!detail::port_problem(s, true).empty()) return std::nullopt;
  if (s == "*") return PortRange{};
  const size_t dash = s.find('-');
  const auto lo = static_cast<uint16_t>(std::stoul(s.substr(0, dash)));
  const auto hi = dash == std::string::npos ? lo : static_cast<uint16_t>(std::stoul(s.substr(dash + 1)));
  return PortRange{lo, hi};
}

std::optional<HostPattern> parse_host_pattern(const std::string& s) {
  if (!detail::host_port_problem(s).empty()) return std::nullopt;
  const size_t colon = s.rfind(':');
  const std::string host = s.substr(0, colon);
  HostPattern p;
  const auto ports = parse_port_range(s.substr(colon + 1));
  if (!ports) return std::nullopt;
  p.ports = *ports;
  // host_problem has accepted it: one of the four forms below.
  if (host[0] == '[') {
    const size_t close = host.find(']');
    if (inet_pton(AF_INET6, host.substr(1, close - 1).c_str(), p.addr.data()) != 1) return std::nullopt;
    p.kind = HostPattern::Kind::V6;
    p.prefix = close + 1 < host.size() ? static_cast<unsigned>(std::stoul(host.substr(close + 2))) : 128;
    mask(p.addr, p.prefix, 128);
    return p;
  }
  const size_t slash = host.find('/');
  if (inet_pton(AF_INET, host.substr(0, slash).c_str(), p.addr.data()) == 1) {
    p.kind = HostPattern::Kind::V4;
    p.prefix = slash == std::string::npos ? 32 : static_cast<unsigned>(std::stoul(host.substr(slash + 1)));
    mask(p.addr, p.prefix, 32);
    return p;
  }
  if (host.rfind("*.", 0) == 0) {
    p.kind = HostPattern::Kind::Suffix;
    p.name = lower(host.substr(2));
  } else {
    p.name = lower(host);
  }
  return p;
}

std::vector<std::string> canonical_host_patterns(const std::vector<std::string>& list) {
  // One entry per host part, with every port any pattern gives it.
  std::map<std::string, std::pair<HostPattern, Ranges>> hosts;
  std::vector<std::string> out;
  for (const auto& s : list) {
    const auto p = parse_host_pattern(s);
    if (!p) {
      out.push_back(s);
      continue;
    }
    auto& [pattern, ports] = hosts.try_emplace(host_text(*p), *p, Ranges{}).first->second;
    ports.push_back(p->ports);
  }
  std::vector<std::string> spelled = out;  // each pattern in its spelling only
  for (const auto& [text, entry] : hosts) {
    for (const auto& r : entry.second) spelled.push_back(text + ":" + port_text(r));
    Ranges wider;  // the ports of every other host part that holds this one
    for (const auto& [other_text, other] : hosts)
      if (other_text != text && host_covers(other.first, entry.first))
        wider.insert(wider.end(), other.second.begin(), other.second.end());
    for (const auto& r : subtract(join(entry.second), join(wider))) out.push_back(text + ":" + port_text(r));
  }
  // Subtracting can split ranges; a form longer than the policy allows
  // would not parse back, so such a list keeps one entry per pattern.
  if (out.size() > kMaxHostPatterns) out = std::move(spelled);
  std::sort(out.begin(), out.end());
  out.erase(std::unique(out.begin(), out.end()), out.end());
  return out;
}

std::vector<std::string> canonical_port_list(const std::vector<std::string>& ports) {
  Ranges rs;
  for (const auto& t : ports) {
    const auto r = parse_port_range(t);
    if (!r) return ports;  // not a port list this reader knows: as written
    rs.push_back(*r);
  }
  std::vector<std::string> out;
  // Not `*`: docker.proxy.ports does not take it.
  for (const auto& r : join(rs)) out.push_back(r.lo == r.hi ? std::to_string(r.lo) : std::to_string(r.lo) + "-" + std::to_string(r.hi));
  return out;
}

bool host_pattern_matches(const HostPattern& p, const std::string& host, uint16_t port) {
  if (port < p.ports.lo || port > p.ports.hi || host.empty()) return false;
  HostPattern h;
  if (inet_pton(AF_INET, host.c_str(), h.addr.data()) == 1) {
    h.kind = HostPattern::Kind::V4;
    h.prefix = 32;
  } else if (inet_pton(AF_INET6, host.c_str(), h.addr.data()) == 1) {
    h.kind = HostPattern::Kind::V6;
    h.prefix = 128;
  } else {
    h.name = lower(host);
  }
  return host_covers(p, h);
}

bool host_patterns_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner) {
  std::vector<HostPattern> outs;
  for (const auto& o : outer)
    if (auto p = parse_host_pattern(o)) outs.push_back(*p);
  return std::all_of(inner.begin(), inner.end(), [&](const std::string& text) {
    if (std::find(outer.begin(), outer.end(), text) != outer.end()) return true;
    const auto in = parse_host_pattern(text);
    if (!in) return false;
    Ranges ports;
    for (const auto& o : outs)
      if (host_covers(o, *in)) ports.push_back(o.ports);
    return ranges_cover(ports, in->ports);
  });
}

bool port_lists_cover(const std::vector<std::string>& outer, const std::vector<std::string>& inner) {
  Ranges have;
  for (const auto& o : outer)
    if (auto r = parse_port_range(o)) have.push_back(*r);
  return std::all_of(inner.begin(), inner.end(), [&](const std::string& text) {
    if (std::find(outer.begin(), outer.end(), text) != outer.end()) return true;
    const auto r = parse_port_range(text);
    return r && ranges_cover(have, *r);
  });
}

}  // namespace gh::policy
