// The processing tree (config_tree.hpp): conversion from yaml-cpp, origins,
// and the block-style writer whose line map takes errors home.
#include "policy/config_tree.hpp"

#include <algorithm>
#include <cctype>
#include <optional>

#include "common/yaml_util.hpp"

namespace gh::job::cfg {

NodePtr Node::get(std::string_view key) const {
  for (const auto& [k, v] : entries)
    if (k.name == key) return v;
  return nullptr;
}

NodePtr scalar(std::string text, bool plain, Mark m, const std::string& file, OriginPtr origin) {
  auto n = std::make_shared<Node>();
  n->kind = Node::Kind::Scalar;
  n->text = std::move(text);
  n->plain = plain;
  n->mark = m;
  n->file = file;
  n->origin = std::move(origin);
  return n;
}

NodePtr null_node(Mark m) {
  auto n = std::make_shared<Node>();
  n->mark = m;
  return n;
}

namespace {

NodePtr convert(const YAML::Node& y, Diagnostics& d, const std::string& file, Mark if_null) {
  auto n = std::make_shared<Node>();
  n->file = file;
  n->mark = yaml::to_mark(y.Mark());
  switch (y.Type()) {
    case YAML::NodeType::Scalar:
      n->kind = Node::Kind::Scalar;
      n->text = y.Scalar();
      n->plain = y.Tag() == "?";
      break;
    case YAML::NodeType::Sequence:
      n->kind = Node::Kind::List;
      for (const auto& item : y) n->items.push_back(convert(item, d, file, n->mark));
      break;
    case YAML::NodeType::Map:
      n->kind = Node::Kind::Map;
      for (const auto& e : yaml::entries(y, d)) n->entries.emplace_back(Key{e.key, e.mark}, convert(e.value, d, file, e.mark));
      break;
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      // yaml-cpp marks an empty value at the next token; the key is where it is.
      if (if_null.line > 0) n->mark = if_null;
      break;
  }
  return n;
}

OriginPtr append_outer(const OriginPtr& inner, const OriginPtr& outer) {
  if (!inner) return outer;
  return std::make_shared<Origin>(Origin{inner->what, inner->file, inner->at, append_outer(inner->outer, outer)});
}

}  // namespace

NodePtr from_yaml(const YAML::Node& n, Diagnostics& d, const std::string& file) { return convert(n, d, file, {}); }

NodePtr with_origin(const NodePtr& n, const OriginPtr& o) {
  if (!n || !o) return n;
  auto c = std::make_shared<Node>(*n);
  c->origin = append_outer(n->origin, o);
  for (auto& i : c->items) i = with_origin(i, o);
  for (auto& [k, v] : c->entries) v = with_origin(v, o);
  return c;
}

std::string describe(const Node& n) {
  switch (n.kind) {
    case Node::Kind::Map: return "a mapping";
    case Node::Kind::List: return "a list";
    case Node::Kind::Null: return "nothing (null)";
    case Node::Kind::Scalar: break;
  }
  std::string s = yaml::printable(n.text);
  if (s.size() > 40) s = s.substr(0, 40) + "...";
  return "`" + s + "`";
}

Place place_of(Mark m, const std::string& file, const OriginPtr& origin) {
  Place p{m, {}};
  // The user's line: the node's own when it is in the user's file, else
  // the innermost use that is.
  bool found = file.empty();
  std::string chain;
  for (const Origin* o = origin.get(); o; o = o->outer.get()) {
    if (!found && o->file.empty()) {
      p.mark = o->at;
      found = true;
    }
    chain += (chain.empty() ? "" : ", ") + o->what + " used at " + (o->file.empty() ? "" : o->file + ":") +
             std::to_string(o->at.line) + ":" + std::to_string(o->at.column);
  }
  if (!file.empty()) {
    chain = "written at " + file + ":" + std::to_string(m.line) + ":" + std::to_string(m.column) +
            (chain.empty() ? "" : ", in ") + chain;
    if (!found) p.mark = {};
  }
  if (!chain.empty()) p.via = " (" + chain + ")";
  return p;
}

Place place_of(const Node& n) { return place_of(n.mark, n.file, n.origin); }

void error_at(Diagnostics& d, const Node& n, const std::string& message, const std::string& allowed) {
  const Place p = place_of(n);
  d.error(p.mark, message + p.via, allowed);
}

namespace {

// Plain when YAML reads it back as the same text; indicators, `: `, ` #`,
// edge spaces and flow characters need quotes.
bool plain_safe(const std::string& s) {
  if (s.empty() || s.front() == ' ' || s.back() == ' ' || s.back() == ':') return false;
  if (std::string_view("-?:,[]{}#&*!|>'\"%@`").find(s.front()) != std::string_view::npos) return false;
  if (s.find(": ") != std::string::npos || s.find(" #") != std::string::npos) return false;
  for (unsigned char c : s)
    if (c < 0x20 || c == 0x7F || c == '{' || c == '}' || c == '[' || c == ']' || c == ',') return false;
  return true;
}

std::string double_quoted(const std::string& s) {
  static const char* hex = "0123456789abcdef";
  std::string o = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': o += "\\\""; break;
      case '\\': o += "\\\\"; break;
      case '\n': o += "\\n"; break;
      case '\t': o += "\\t"; break;
      case '\r': o += "\\r"; break;
      default:
        if (c < 0x20 || c == 0x7F) {
          o += "\\x";
          o += hex[c >> 4];
          o += hex[c & 15];
        } else {
          o += static_cast<char>(c);
        }
    }
  }
  return o + "\"";
}

// A literal block keeps commands readable; only for text it represents
// exactly (no carriage returns or other controls, no tab opening a line).
bool block_safe(const std::string& s) {
  if (s.find('\n') == std::string::npos) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    const unsigned char c = static_cast<unsigned char>(s[i]);
    if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7F) return false;
    if (c == '\t' && (i == 0 || s[i - 1] == '\n')) return false;
  }
  return s.find_first_not_of('\n') != std::string::npos;
}

struct Writer {
  std::string out;
  std::vector<LineSource> map;
  size_t max;
  bool over = false;

  void line(const std::string& l, const NodePtr& key, const NodePtr& value = nullptr, size_t value_at = 0) {
    if (over) return;
    if (out.size() + l.size() + 1 > max) {
      over = true;
      return;
    }
    out += l;
    out += '\n';
    map.push_back(LineSource{key, value, static_cast<int>(value_at) + 1, nullptr, 0});
    if (pending_list) {
      map.back().list = pending_list;
      map.back().dash_column = pending_dash;
      pending_list = nullptr;
    }
  }
  // The list whose first item the next line starts.
  NodePtr pending_list;
  int pending_dash = 0;

  std::string scalar_text(const Node& n) {
    if (n.kind == Node::Kind::Null) return "";
    if (n.plain && plain_safe(n.text)) return n.text;
    return double_quoted(n.text);
  }

  // `lead` starts the line ("  key:", "  - key:", "  -"); `indent` is the
  // column of what owns the value, its children go two further.
  void value(const std::string& lead, const std::string& indent, const NodePtr& n, const NodePtr& line_node) {
    const std::string inner = indent + "  ";
    switch (n->kind) {
      case Node::Kind::Null: line(lead, line_node); return;
      case Node::Kind::Scalar: {
        if (!block_safe(n->text)) {
          line(lead + " " + scalar_text(*n), line_node, n, lead.size() + 1);
          return;
        }
        const size_t trailing = n->text.size() - n->text.find_last_not_of('\n') - 1;
        const char* chomp = trailing == 0 ? "-" : trailing == 1 ? "" : "+";
        // An indentation indicator when the text starts with a space.
        line(lead + " |" + (n->text[0] == ' ' ? "2" : "") + chomp, line_node, n, lead.size() + 1);
        const std::string body = trailing >= 1 ? n->text.substr(0, n->text.size() - 1) : n->text;
        for (size_t i = 0;;) {
          size_t j = body.find('\n', i);
          if (j == std::string::npos) j = body.size();
          const std::string l = body.substr(i, j - i);
          line(l.empty() ? std::string() : inner + l, n, n, 0);
          if (j == body.size()) break;
          i = j + 1;
        }
        return;
      }
      case Node::Kind::List:
        if (n->items.empty()) {
          line(lead + " []", line_node, n, lead.size() + 1);
          return;
        }
        line(lead, line_node);
        pending_list = n;
        pending_dash = static_cast<int>(inner.size()) + 1;
        for (const auto& item : n->items) list_item(inner, item);
        return;
      case Node::Kind::Map:
        if (n->entries.empty()) {
          line(lead + " {}", line_node, n, lead.size() + 1);
          return;
        }
        line(lead, line_node);
        mapping(inner, *n);
        return;
    }
  }

  std::string key_text(const std::string& k) { return plain_safe(k) ? k : double_quoted(k); }

  void mapping(const std::string& indent, const Node& m) {
    for (const auto& [k, v] : m.entries) value(indent + key_text(k.name) + ":", indent, v, key_node(k, v));
  }

  // A line that holds only a key points at the key.
  NodePtr key_node(const Key& k, const NodePtr& v) {
    auto n = std::make_shared<Node>();
    n->mark = k.mark;
    n->file = v->file;
    n->origin = v->origin;
    return n;
  }

  void list_item(const std::string& indent, const NodePtr& item) {
    if (item->kind == Node::Kind::Map && !item->entries.empty()) {
      // `- first: value`, then the other keys under it, two further in.
      const std::string keys = indent + "  ";
      const auto& [k0, v0] = item->entries.front();
      value(indent + "- " + key_text(k0.name) + ":", keys, v0, key_node(k0, v0));
      for (size_t i = 1; i < item->entries.size(); ++i) {
        const auto& [k, v] = item->entries[i];
        value(keys + key_text(k.name) + ":", keys, v, key_node(k, v));
      }
      return;
    }
    value(indent + "-", indent, item, item);
  }
};

}  // namespace

std::optional<Emitted> emit(const Node& root, size_t max_bytes) {
  Writer w;
  w.max = max_bytes;
  auto r = std::make_shared<Node>(root);
  if (root.kind == Node::Kind::Map) w.mapping("", root);
  else w.value("", "", r, r);
  if (w.over) return std::nullopt;
  return Emitted{std::move(w.out), std::move(w.map)};
}

}  // namespace gh::job::cfg
