// The masker: an Aho-Corasick automaton over every form of every secret,
// run over the stream with leftmost-longest match selection.
//
// Why the hold-back is exact: the automaton's state after the last byte is
// the longest tail of the stream that is a prefix of some pattern. A match
// that is still to come must start inside the longest tail that is a
// *proper* prefix (ext_depth below), so everything before that tail can be
// emitted now, and a candidate match that starts before it can be committed
// (no longer or further-left match can still appear).
#include "worker/masker.hpp"

#include <algorithm>
#include <array>
#include <mutex>

#include "common/secret_forms.hpp"

namespace gh::worker {

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

}  // namespace gh::worker
