// The masker: an Aho-Corasick automaton over every form of every secret,
// run over the stream with leftmost-longest match selection.
//
// Why the hold-back is exact: the automaton's state after the last byte is
// the longest tail of the stream that is a prefix of some pattern. A match
// that is still to come must start inside the longest tail that is a
// *proper* prefix (ext_depth below), so everything before that tail can be
// emitted now, and a candidate match that starts before it can be committed
// (no longer or further-left match can still appear).
#include "broker/masker.hpp"

#include <algorithm>
#include <array>
#include <mutex>

namespace gh::broker {

namespace {

// Shorter encoded forms would match innocent text too often; they carry at
// most a few bytes of the secret.
constexpr size_t kMinFormBytes = 8;

std::string base64(std::string_view in, bool url) {
  const char* alphabet = url ? "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"
                             : "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((in.size() + 2) / 3 * 4);
  uint32_t acc = 0;
  int bits = 0;
  for (unsigned char c : in) {
    acc = (acc << 8) | c;
    bits += 8;
    while (bits >= 6) {
      bits -= 6;
      out += alphabet[(acc >> bits) & 63];
    }
  }
  if (bits > 0) out += alphabet[(acc << (6 - bits)) & 63];  // the partial last character, no '='
  return out;
}

// The characters of base64(X + v), |X| = skip, that depend on v's bytes
// alone: what the secret looks like wherever it sits in a longer stream.
std::string base64_aligned(std::string_view v, size_t skip, bool url) {
  std::string padded(skip, '\0');
  padded.append(v);
  std::string enc = base64(padded, url);
  size_t first = (8 * skip + 5) / 6;         // first character wholly inside v
  size_t end = 8 * (skip + v.size()) / 6;    // one past the last such character
  if (end <= first) return {};
  return enc.substr(first, end - first);
}

std::string percent(std::string_view v, bool upper, bool form, std::string_view also_unreserved) {
  const char* hex = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  for (unsigned char c : v) {
    bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
                      c == '.' || c == '_' || c == '~' || also_unreserved.find(static_cast<char>(c)) != std::string_view::npos;
    if (unreserved) out += static_cast<char>(c);
    else if (form && c == ' ') out += '+';
    else {
      out += '%';
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

std::string hex(std::string_view v, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  std::string out;
  out.reserve(v.size() * 2);
  for (unsigned char c : v) {
    out += digits[c >> 4];
    out += digits[c & 15];
  }
  return out;
}

// Decodes UTF-8 strictly; false on anything malformed (then no \uXXXX form
// exists: encoders either refuse or substitute U+FFFD).
bool utf8_decode(std::string_view v, std::vector<uint32_t>& cps) {
  static constexpr uint32_t kMin[] = {0, 0x80, 0x800, 0x10000};
  for (size_t i = 0; i < v.size();) {
    unsigned char c = static_cast<unsigned char>(v[i]);
    size_t n;
    uint32_t cp;
    if (c < 0x80) n = 0, cp = c;
    else if ((c >> 5) == 6) n = 1, cp = c & 0x1f;
    else if ((c >> 4) == 14) n = 2, cp = c & 0x0f;
    else if ((c >> 3) == 30) n = 3, cp = c & 0x07;
    else return false;
    if (n >= v.size() - i) return false;
    for (size_t k = 1; k <= n; ++k) {
      unsigned char cc = static_cast<unsigned char>(v[i + k]);
      if ((cc >> 6) != 2) return false;
      cp = (cp << 6) | (cc & 0x3f);
    }
    if (cp < kMin[n] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    cps.push_back(cp);
    i += n + 1;
  }
  return true;
}

struct JsonStyle {
  bool escape_slash;  // "\/" (PHP, some Java encoders)
  bool ascii_only;    // non-ASCII as \uXXXX (Python's default)
  bool upper_hex;     // \u001F rather than \u001f
  bool html_safe;     // < > & as \u003c \u003e \u0026 (Go's default)
};

void json_unicode(std::string& out, uint32_t u, bool upper) {
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  out += "\\u";
  for (int shift = 12; shift >= 0; shift -= 4) out += digits[(u >> shift) & 15];
}

void json_code_point(std::string& out, uint32_t cp, const JsonStyle& s) {
  switch (cp) {
    case '"': out += "\\\""; return;
    case '\\': out += "\\\\"; return;
    case '\n': out += "\\n"; return;
    case '\t': out += "\\t"; return;
    case '\r': out += "\\r"; return;
    case '\b': out += "\\b"; return;
    case '\f': out += "\\f"; return;
    default: break;
  }
  if (cp == '/' && s.escape_slash) out += "\\/";
  else if (cp < 0x20 || (s.html_safe && (cp == '<' || cp == '>' || cp == '&'))) json_unicode(out, cp, s.upper_hex);
  else if (cp < 0x80) out += static_cast<char>(cp);
  else if (cp < 0x10000) json_unicode(out, cp, s.upper_hex);
  else {
    json_unicode(out, 0xd800 + ((cp - 0x10000) >> 10), s.upper_hex);
    json_unicode(out, 0xdc00 + ((cp - 0x10000) & 0x3ff), s.upper_hex);
  }
}

std::string json(std::string_view v, const JsonStyle& s, const std::vector<uint32_t>* cps) {
  std::string out;
  if (s.ascii_only) {
    for (uint32_t cp : *cps) json_code_point(out, cp, s);
  } else {
    // Bytes >= 0x80 pass through as they are (valid or not).
    for (unsigned char c : v) {
      if (c >= 0x80) out += static_cast<char>(c);
      else json_code_point(out, c, s);
    }
  }
  return out;
}

}  // namespace

std::vector<std::string> secret_forms(std::string_view value) {
  std::vector<std::string> forms;
  if (value.empty()) return forms;
  auto add = [&](std::string f) {
    if (f.size() < kMinFormBytes && f != value) return;
    if (f.empty() || std::find(forms.begin(), forms.end(), f) != forms.end()) return;
    forms.push_back(std::move(f));
  };
  add(std::string(value));
  for (bool url : {false, true})
    for (size_t skip = 0; skip < 3; ++skip) add(base64_aligned(value, skip, url));
  for (bool upper : {true, false}) {
    add(percent(value, upper, false, ""));
    add(percent(value, upper, true, ""));
    add(percent(value, upper, false, "!*'()"));  // JavaScript's encodeURIComponent
    add(hex(value, upper));
  }
  std::vector<uint32_t> cps;
  const bool valid_utf8 = utf8_decode(value, cps);
  for (int bits = 0; bits < 16; ++bits) {
    JsonStyle s{(bits & 1) != 0, (bits & 2) != 0, (bits & 4) != 0, (bits & 8) != 0};
    if (s.ascii_only && !valid_utf8) continue;
    add(json(value, s, &cps));
  }
  return forms;
}

size_t mask_pattern_bytes(std::string_view value) {
  size_t total = 0;
  for (const auto& f : secret_forms(value)) total += f.size();
  return total;
}

struct Masker::Automaton {
  // Nodes in depth-first order; node i's edges are labels/targets in
  // [edge_begin[i], edge_begin[i + 1]), sorted by label.
  std::vector<uint32_t> fail;
  std::vector<uint32_t> edge_begin;
  std::vector<int32_t> out;          // longest pattern ending here (this node or a suffix), -1: none
  std::vector<uint32_t> ext_depth;   // longest suffix that is a proper prefix of a pattern
  std::vector<uint8_t> labels;
  std::vector<uint32_t> targets;
  std::array<uint32_t, 256> root_next{};
  std::vector<uint32_t> pattern_len;
  std::vector<uint32_t> pattern_name;  // index into replacements
  std::vector<std::string> replacements;
  size_t max_len = 0;

  uint32_t child(uint32_t s, uint8_t c) const {
    const uint32_t b = edge_begin[s], e = edge_begin[s + 1];
    if (e - b <= 8) {
      for (uint32_t i = b; i < e; ++i)
        if (labels[i] == c) return targets[i];
      return 0;
    }
    const uint8_t* first = labels.data() + b;
    const uint8_t* last = labels.data() + e;
    const uint8_t* it = std::lower_bound(first, last, c);
    return it != last && *it == c ? targets[b + static_cast<uint32_t>(it - first)] : 0;
  }

  uint32_t step(uint32_t s, uint8_t c) const {
    while (s != 0) {
      if (uint32_t t = child(s, c)) return t;
      s = fail[s];
    }
    return root_next[c];
  }

  static std::shared_ptr<const Automaton> build(const std::vector<std::pair<std::string, std::string>>& secrets);
};

std::shared_ptr<const Masker::Automaton> Masker::Automaton::build(
    const std::vector<std::pair<std::string, std::string>>& secrets) {
  auto a = std::make_shared<Automaton>();
  std::vector<std::string> forms;
  std::vector<uint32_t> form_name;
  for (const auto& [name, value] : secrets) {
    if (value.empty()) continue;
    a->replacements.push_back("[masked:" + name + "]");
    for (auto& f : secret_forms(value)) {
      forms.push_back(std::move(f));
      form_name.push_back(static_cast<uint32_t>(a->replacements.size() - 1));
    }
  }
  // Sorted, the trie is built depth-first with no per-node allocation: each
  // pattern shares with the one before it exactly their common prefix.
  std::vector<uint32_t> order(forms.size());
  for (uint32_t i = 0; i < order.size(); ++i) order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](uint32_t x, uint32_t y) { return forms[x] < forms[y]; });

  std::vector<uint32_t> parent(1, 0), depth(1, 0);
  std::vector<uint8_t> label(1, 0);
  std::vector<int32_t> terminal(1, -1);
  std::vector<uint32_t> path(1, 0);  // path[d]: the node for the current pattern's first d bytes
  const std::string* prev = nullptr;
  for (uint32_t idx : order) {
    const std::string& f = forms[idx];
    if (prev && *prev == f) continue;  // the same text from another secret: the first name wins
    size_t common = 0;
    if (prev)
      while (common < prev->size() && common < f.size() && (*prev)[common] == f[common]) ++common;
    path.resize(common + 1);
    for (size_t d = common; d < f.size(); ++d) {
      const auto node = static_cast<uint32_t>(parent.size());
      parent.push_back(path[d]);
      depth.push_back(static_cast<uint32_t>(d + 1));
      label.push_back(static_cast<uint8_t>(f[d]));
      terminal.push_back(-1);
      path.push_back(node);
    }
    const auto pattern = static_cast<uint32_t>(a->pattern_len.size());
    terminal[path[f.size()]] = static_cast<int32_t>(pattern);
    a->pattern_len.push_back(static_cast<uint32_t>(f.size()));
    a->pattern_name.push_back(form_name[idx]);
    a->max_len = std::max(a->max_len, f.size());
    prev = &f;
  }
  forms = {};

  // Edges grouped by parent (counting sort); a node's children were made in
  // label order, so each group comes out sorted.
  const size_t n = parent.size();
  a->edge_begin.assign(n + 1, 0);
  for (size_t v = 1; v < n; ++v) ++a->edge_begin[parent[v] + 1];
  for (size_t v = 0; v < n; ++v) a->edge_begin[v + 1] += a->edge_begin[v];
  a->labels.resize(n - 1);
  a->targets.resize(n - 1);
  {
    std::vector<uint32_t> fill(a->edge_begin.begin(), a->edge_begin.end() - 1);
    for (size_t v = 1; v < n; ++v) {
      uint32_t at = fill[parent[v]]++;
      a->labels[at] = label[v];
      a->targets[at] = static_cast<uint32_t>(v);
    }
  }
  parent = {};
  label = {};
  for (uint32_t i = a->edge_begin[0]; i < a->edge_begin[1]; ++i) a->root_next[a->labels[i]] = a->targets[i];

  // Failure links breadth-first, so a node's fail target is finished first.
  a->fail.assign(n, 0);
  a->out.assign(n, -1);
  a->ext_depth.assign(n, 0);
  std::vector<uint32_t> queue;
  queue.reserve(n);
  for (uint32_t i = a->edge_begin[0]; i < a->edge_begin[1]; ++i) queue.push_back(a->targets[i]);
  for (size_t head = 0; head < queue.size(); ++head) {
    const uint32_t u = queue[head];
    const uint32_t f = a->fail[u];
    const bool leaf = a->edge_begin[u] == a->edge_begin[u + 1];
    a->out[u] = terminal[u] >= 0 ? terminal[u] : a->out[f];
    a->ext_depth[u] = leaf ? a->ext_depth[f] : depth[u];
    for (uint32_t i = a->edge_begin[u]; i < a->edge_begin[u + 1]; ++i) {
      const uint32_t t = a->targets[i];
      a->fail[t] = a->step(f, a->labels[i]);
      queue.push_back(t);
    }
  }
  return a;
}

// One job's steps all mask the same secrets: compile once, share.
Masker::Masker(std::vector<std::pair<std::string, std::string>> secrets) {
  static std::mutex mu;
  static std::vector<std::pair<std::string, std::string>> cached_for;
  static std::shared_ptr<const Automaton> cached;
  std::lock_guard<std::mutex> lock(mu);
  if (!cached || cached_for != secrets) {
    cached = Automaton::build(secrets);
    for (auto& [name, value] : cached_for) std::fill(value.begin(), value.end(), '\0');
    cached_for = std::move(secrets);
  }
  ac_ = cached;
}

Masker::~Masker() {
  // Held-back bytes may be the start of a secret.
  std::fill(pending_.begin(), pending_.end(), '\0');
}

size_t Masker::max_hold() const { return ac_->max_len > 0 ? ac_->max_len - 1 : 0; }
size_t Masker::held() const { return pending_.size(); }
size_t Masker::pattern_count() const { return ac_->pattern_len.size(); }

void Masker::scan(bool eof, std::string& out) {
  const Automaton& a = *ac_;
  size_t emitted = 0;  // pending_[0, emitted) is already in `out` or replaced
  auto commit = [&] {
    out.append(pending_, emitted, best_start_ - emitted);
    out += a.replacements[a.pattern_name[best_pattern_]];
    emitted = best_end_;
    scanned_ = best_end_;  // matches never overlap: rescan after this one
    state_ = 0;
    have_best_ = false;
  };
  const size_t size = pending_.size();
  const char* data = pending_.data();
  for (;;) {
    bool committed = false;
    while (scanned_ < size) {
      state_ = a.step(state_, static_cast<uint8_t>(data[scanned_]));
      ++scanned_;
      const int32_t out_pattern = a.out[state_];
      if (out_pattern >= 0) {
        size_t start = scanned_ - a.pattern_len[static_cast<size_t>(out_pattern)];
        if (!have_best_ || start < best_start_ || (start == best_start_ && scanned_ > best_end_)) {
          have_best_ = true;
          best_start_ = start;
          best_end_ = scanned_;
          best_pattern_ = static_cast<uint32_t>(out_pattern);
        }
      }
      if (have_best_ && scanned_ - a.ext_depth[state_] > best_start_) {
        commit();
        committed = true;
        break;
      }
    }
    if (committed) continue;
    if (eof && have_best_) {
      commit();
      continue;
    }
    break;
  }
  const size_t hold_from = eof ? size : scanned_ - a.ext_depth[state_];
  out.append(pending_, emitted, hold_from - emitted);
  pending_.erase(0, hold_from);
  scanned_ -= hold_from;
  if (have_best_) {
    best_start_ -= hold_from;
    best_end_ -= hold_from;
  }
  if (eof) state_ = 0;
}

std::string Masker::feed(std::string_view chunk) {
  std::string out;
  out.reserve(chunk.size() + pending_.size());
  pending_.append(chunk);
  scan(false, out);
  return out;
}

std::string Masker::flush() {
  std::string out;
  scan(true, out);
  return out;
}

}  // namespace gh::broker
