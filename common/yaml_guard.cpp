// The structural guard in front of yaml-cpp (see yaml_util.hpp): one pass
// over the parser's events, before any tree is built, that refuses what
// would make a later walk of the tree unsafe or ambiguous.
#include <yaml-cpp/eventhandler.h>

#include <algorithm>
#include <sstream>
#include <unordered_map>

#include "common/yaml_util.hpp"

namespace gh::yaml {

namespace {

struct Abort {};

// Stands for a null key (`~:`), which no string key can equal.
constexpr std::string_view kNullKey{"\0null", 5};

// The structural guard: yaml-cpp's events, before any tree exists. It sees
// every alias once and knows the size and height of every anchored node, so
// it can tell what a walk of the tree would cost without doing it.
class Guard : public YAML::EventHandler {
 public:
  Guard(const std::string& text, Diagnostics& d, std::vector<int>* anchor_lines)
      : text_(text), d_(d), anchor_lines_(anchor_lines) {}

  void OnDocumentStart(const YAML::Mark&) override {}
  void OnDocumentEnd() override {}

  void OnNull(const YAML::Mark& m, YAML::anchor_t anchor) override {
    leaf(m, anchor, 1, 0, std::string(kNullKey));
  }
  void OnScalar(const YAML::Mark& m, const std::string& tag, YAML::anchor_t anchor, const std::string& value) override {
    if (tag != "?" && !quote_closed(m))
      fatal(m, "this quoted string is never closed (is the file cut short?)", "a closing quote");
    // Several merge keys in one mapping are common in real configs and
    // CircleCI merges them all; entries() does the same, earlier first.
    if (value == "<<" && tag == "?") return leaf(m, anchor, 1, 0, std::nullopt);
    leaf(m, anchor, 1, 0, value);
  }
  void OnAlias(const YAML::Mark& m, YAML::anchor_t anchor) override {
    if (++aliases_ > kMaxAliases)
      fatal(m, "more than " + std::to_string(kMaxAliases) + " aliases (`*name`) in one document",
            "at most " + std::to_string(kMaxAliases) + " aliases");
    auto it = anchors_.find(anchor);
    const Shape s = it == anchors_.end() ? Shape{1, 0} : it->second;
    if (static_cast<int>(stack_.size()) + s.height > kMaxDepth)
      fatal(m, "this alias nests the document more than " + std::to_string(kMaxDepth) + " levels deep",
            "at most " + std::to_string(kMaxDepth) + " levels of nesting");
    leaf(m, YAML::NullAnchor, s.size, s.height, std::nullopt);
  }
  void OnSequenceStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor,
                       YAML::EmitterStyle::value) override {
    open(m, anchor, false);
  }
  void OnSequenceEnd() override { close(); }
  void OnMapStart(const YAML::Mark& m, const std::string&, YAML::anchor_t anchor, YAML::EmitterStyle::value) override {
    open(m, anchor, true);
  }
  void OnMapEnd() override { close(); }

 private:
  struct Shape {
    uint64_t size;  // nodes, aliases expanded
    int height;     // collection levels below and including this node
  };
  struct Frame {
    bool is_map;
    YAML::anchor_t anchor;
    uint64_t size = 1;
    int height = 1;
    size_t children = 0;
    std::unordered_map<std::string, Mark> keys;
  };

  [[noreturn]] void fatal(const YAML::Mark& m, const std::string& msg, const std::string& allowed) {
    d_.error(to_mark(m), msg, allowed);
    throw Abort{};
  }

  void count(const YAML::Mark& m, uint64_t n) {
    total_ += n;
    if (total_ > kMaxNodes)
      fatal(m, "the document expands to more than " + std::to_string(kMaxNodes) +
                   " nodes (aliases are expanded: is this an alias bomb?)",
            "documents of at most " + std::to_string(kMaxNodes) + " nodes after expanding aliases");
  }

  void add_to_parent(const YAML::Mark& m, uint64_t size, int height, const std::optional<std::string>& key) {
    if (stack_.empty()) return;
    Frame& p = stack_.back();
    if (p.is_map && p.children % 2 == 0 && key) {
      auto [it, fresh] = p.keys.emplace(*key, to_mark(m));
      if (!fresh) {
        const std::string shown = *key == kNullKey ? std::string("`~`") : describe(YAML::Node(*key));
        d_.error(to_mark(m),
                 "duplicate key " + shown + " (first at line " + std::to_string(it->second.line) + ", column " +
                     std::to_string(it->second.column) + "); YAML would silently keep only one",
                 "each key once per mapping");
      }
    }
    ++p.children;
    p.size += size;
    p.height = std::max(p.height, height + 1);
  }

  void leaf(const YAML::Mark& m, YAML::anchor_t anchor, uint64_t size, int height,
            const std::optional<std::string>& key) {
    count(m, size);
    anchored(m, anchor);
    if (anchor != YAML::NullAnchor) anchors_[anchor] = Shape{size, height};
    add_to_parent(m, size, height, key);
  }

  void open(const YAML::Mark& m, YAML::anchor_t anchor, bool is_map) {
    count(m, 1);
    anchored(m, anchor);
    if (static_cast<int>(stack_.size()) + 1 > kMaxDepth)
      fatal(m, "nested more than " + std::to_string(kMaxDepth) + " levels deep",
            "at most " + std::to_string(kMaxDepth) + " levels of nesting");
    stack_.push_back(Frame{is_map, anchor, 1, 1, 0, {}});
    marks_.push_back(m);
  }

  void close() {
    if (stack_.empty()) return;
    Frame f = std::move(stack_.back());
    stack_.pop_back();
    const YAML::Mark m = marks_.back();
    marks_.pop_back();
    if (f.anchor != YAML::NullAnchor) anchors_[f.anchor] = Shape{f.size, f.height};
    add_to_parent(m, f.size, f.height, std::nullopt);
  }

  // yaml-cpp 0.7 ends a quoted scalar that is still open at the end of the
  // input as if it had been closed, so a file cut inside a quoted command
  // would run a shorter command. Look for the closing quote in the text.
  bool quote_closed(const YAML::Mark& m) const {
    if (m.pos < 0) return true;
    size_t i = static_cast<size_t>(m.pos);
    // Skip `&anchor` and `!tag` properties written before the quote.
    while (i < text_.size() && (text_[i] == '&' || text_[i] == '!')) {
      while (i < text_.size() && text_[i] != ' ' && text_[i] != '\n') ++i;
      while (i < text_.size() && (text_[i] == ' ' || text_[i] == '\n' || text_[i] == '\r')) ++i;
    }
    if (i >= text_.size() || (text_[i] != '"' && text_[i] != '\'')) return true;
    const char q = text_[i];
    for (++i; i < text_.size(); ++i) {
      if (q == '"' && text_[i] == '\\') {
        ++i;
      } else if (text_[i] == q) {
        if (q == '\'' && i + 1 < text_.size() && text_[i + 1] == '\'') {
          ++i;
          continue;
        }
        return true;
      }
    }
    return false;
  }

  void anchored(const YAML::Mark& m, YAML::anchor_t anchor) {
    if (anchor != YAML::NullAnchor && anchor_lines_) anchor_lines_->push_back(to_mark(m).line);
  }

  const std::string& text_;
  Diagnostics& d_;
  std::vector<int>* anchor_lines_;
  std::vector<Frame> stack_;
  std::vector<YAML::Mark> marks_;
  std::unordered_map<YAML::anchor_t, Shape> anchors_;
  size_t aliases_ = 0;
  uint64_t total_ = 0;
};

// Counts documents without building them.
class NullHandler : public YAML::EventHandler {
 public:
  YAML::Mark start;
  void OnDocumentStart(const YAML::Mark& m) override { start = m; }
  void OnDocumentEnd() override {}
  void OnNull(const YAML::Mark&, YAML::anchor_t) override {}
  void OnAlias(const YAML::Mark&, YAML::anchor_t) override {}
  void OnScalar(const YAML::Mark&, const std::string&, YAML::anchor_t, const std::string&) override {}
  void OnSequenceStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnSequenceEnd() override {}
  void OnMapStart(const YAML::Mark&, const std::string&, YAML::anchor_t, YAML::EmitterStyle::value) override {}
  void OnMapEnd() override {}
};

void syntax_error(const YAML::Exception& e, Diagnostics& d) {
  std::string msg = e.msg.empty() ? std::string("cannot be read") : e.msg;
  d.error(to_mark(e.mark), "YAML syntax error: " + msg, "");
}

}  // namespace

std::optional<YAML::Node> load(const std::string& text, Diagnostics& d, std::vector<int>* anchor_lines) {
  if (!check_text(text, d)) return std::nullopt;
  try {
    std::istringstream in(text);
    YAML::Parser parser(in);
    Guard guard(text, d, anchor_lines);
    if (!parser.HandleNextDocument(guard)) {
      d.error({}, "the file is empty (no YAML document in it)", "");
      return std::nullopt;
    }
    NullHandler rest;
    if (parser.HandleNextDocument(rest)) {
      d.error(to_mark(rest.start), "more than one YAML document in the file (`---` starts a second one)",
              "a single document");
      return std::nullopt;
    }
  } catch (const Abort&) {
    return std::nullopt;
  } catch (const YAML::Exception& e) {
    syntax_error(e, d);
    return std::nullopt;
  } catch (const std::exception& e) {
    d.error({}, std::string("cannot read the YAML: ") + e.what(), "");
    return std::nullopt;
  }
  try {
    return YAML::Load(text);
  } catch (const YAML::Exception& e) {
    syntax_error(e, d);
  } catch (const std::exception& e) {
    d.error({}, std::string("cannot read the YAML: ") + e.what(), "");
  }
  return std::nullopt;
}

}  // namespace gh::yaml
