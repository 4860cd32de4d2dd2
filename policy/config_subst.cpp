// `<< ... >>` references and logic statements (config_params.hpp).
#include <algorithm>
#include <cctype>
#include <regex>

#include "common/yaml_util.hpp"
#include "policy/config_params.hpp"
#include "policy/template_sections.hpp"

namespace gh::job::cfg {

namespace {

struct Ref {
  size_t at, length;  // of `<< ... >>` in the text
  std::string path;   // "parameters.x"
};

// The next reference at or after `from`. A dot is required so that shell
// heredocs (`cat <<EOF >>log`) are never taken for one; `\<<` is escaped.
std::optional<Ref> next_ref(const std::string& s, size_t from) {
  for (size_t i = s.find("<<", from); i != std::string::npos; i = s.find("<<", i + 2)) {
    if (i > 0 && s[i - 1] == '\\') continue;
    size_t j = i + 2;
    while (j < s.size() && s[j] == ' ') ++j;
    const size_t id = j;
    bool dot = false;
    while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '-' || s[j] == '.')) {
      dot = dot || s[j] == '.';
      ++j;
    }
    if (j == id || !dot || std::isdigit(static_cast<unsigned char>(s[id]))) continue;
    const std::string path = s.substr(id, j - id);
    while (j < s.size() && s[j] == ' ') ++j;
    if (s.compare(j, 2, ">>") == 0) return Ref{i, j + 2 - i, path};
  }
  return std::nullopt;
}

std::string unescape(const std::string& s) {
  std::string o;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '\\' && s.compare(i + 1, 2, "<<") == 0) continue;
    o += s[i];
  }
  return o;
}

// Where `needle` is written in the user's file, when it is there literally
// soon after the node's start; else the node's place.
Place locate(const Node& n, const std::string& needle, const Vars& v) {
  Place p = place_of(n);
  if (!v.source || !n.file.empty() || n.origin || n.mark.line <= 0) return p;
  size_t off = 0;
  for (int line = 1; line < n.mark.line; ++line) {
    off = v.source->find('\n', off);
    if (off == std::string::npos) return p;
    ++off;
  }
  off += static_cast<size_t>(n.mark.column - 1);
  const size_t at = v.source->find(needle, off);
  if (at == std::string::npos || at - off > n.text.size() * 2 + 64) return p;
  p.mark = yaml::mark_at_offset(*v.source, at);
  return p;
}

// The value a path names, or nullptr after an error.
NodePtr resolve(const Node& at, const Ref& ref, const std::string& text, const Vars& v, Diagnostics& d) {
  const std::string& path = ref.path;
  auto unknown = [&](const std::string& why, const std::string& allowed) -> NodePtr {
    const Place p = locate(at, text.substr(ref.at, ref.length), v);
    d.error(p.mark, "Unknown variable(s): " + yaml::printable(path) + " (" + why + ")" + p.via, allowed);
    return nullptr;
  };
  if (path.rfind("parameters.", 0) == 0) {
    const std::string name = path.substr(11);
    if (!v.parameters)
      return unknown("`<< parameters.* >>` works inside a command, job or executor that declares the parameter",
                     "<< pipeline.parameters.NAME >> at the top level");
    auto it = v.parameters->find(name);
    if (it == v.parameters->end()) {
      std::vector<std::string> names;
      for (const auto& [k, val] : *v.parameters) names.push_back(k);
      return unknown(v.where + " declares no parameter `" + yaml::printable(name) + "`",
                     names.empty() ? std::string("declare it under `parameters:`") : yaml::join(names));
    }
    return it->second;
  }
  if (path.rfind("pipeline.parameters.", 0) == 0) {
    const std::string name = path.substr(20);
    if (v.pipeline_parameters) {
      auto it = v.pipeline_parameters->find(name);
      if (it != v.pipeline_parameters->end()) return it->second;
    }
    return unknown("the top-level `parameters:` declares no `" + yaml::printable(name) + "`",
                   "declare it under the top-level `parameters:`");
  }
  if (path.rfind("pipeline.", 0) == 0 && v.pipeline) {
    auto it = v.pipeline->find(path.substr(9));
    if (it != v.pipeline->end()) return scalar(it->second, false, at.mark, at.file, at.origin);
    std::vector<std::string> names;
    for (const auto& [k, val] : *v.pipeline) names.push_back("pipeline." + k);
    return unknown("not a pipeline value this runner has", yaml::join(names));
  }
  if (path.rfind("matrix.", 0) == 0)
    return unknown("matrix values are set where a workflow invokes the job with `matrix:`", "<< parameters.NAME >>");
  return unknown("references are << parameters.x >>, << pipeline.parameters.x >> and << pipeline.x >>",
                 "<< parameters.NAME >>, << pipeline.parameters.NAME >>, << pipeline.git.branch >>, ...");
}

bool is_steps_param(const std::string& path, const Vars& v) {
  if (!v.decls || path.rfind("parameters.", 0) != 0) return false;
  const std::string name = path.substr(11);
  return std::any_of(v.decls->begin(), v.decls->end(),
                     [&](const ParamDecl& p) { return p.name == name && p.type == ParamType::Steps; });
}

NodePtr subst(const NodePtr& n, const Vars& v, Budget& b, Diagnostics& d, bool& ok);

NodePtr subst_scalar(const NodePtr& in, const Vars& v, Budget& b, Diagnostics& d, bool& ok) {
  NodePtr n = in;
  if (n->text.find("<<#") != std::string::npos || n->text.find("<<^") != std::string::npos) {
    // `<<# parameters.x >>TEXT<</ parameters.x >>`: TEXT only when x is true.
    auto sec = resolve_sections(n->text, [&](const std::string& name) -> std::optional<bool> {
      auto val = resolve(*n, Ref{0, 0, name}, n->text, v, d);
      if (!val) return std::nullopt;
      if (val->is_scalar()) return truthy_text(val->text, val->plain);
      return val->is_list() ? !val->items.empty() : val->is_map();
    });
    if (!sec.error.empty()) {
      if (sec.error.find("has no value here") == std::string::npos) error_at(d, *n, sec.error, "<<# NAME >>text<</ NAME >>");
      ok = false;
      return in;
    }
    auto c = std::make_shared<Node>(*n);
    c->text = std::move(sec.text);
    n = c;
  }
  const std::string& s = n->text;
  auto first = next_ref(s, 0);
  if (!first) {
    if (s.find("\\<<") == std::string::npos) return n;
    auto c = std::make_shared<Node>(*n);
    c->text = unescape(s);
    return c;
  }
  // Exactly one reference: the value itself, typed.
  if (first->at == 0 && first->length == s.size()) {
    auto val = resolve(*n, *first, s, v, d);
    if (!val) {
      ok = false;
      return n;
    }
    return val;
  }
  std::string out;
  size_t pos = 0;
  for (auto r = first; r; r = next_ref(s, pos)) {
    out += unescape(s.substr(pos, r->at - pos));
    pos = r->at + r->length;
    auto val = resolve(*n, *r, s, v, d);
    if (!val) {
      ok = false;
      continue;
    }
    if (!val->is_scalar() && !val->is_null()) {
      error_at(d, *n, "`<< " + r->path + " >>` is " + describe(*val) + " and cannot be part of a text",
               "use a steps or executor parameter as a whole value");
      ok = false;
      continue;
    }
    out += val->text;
    if (out.size() > Budget::kMaxBytes) break;
  }
  out += unescape(s.substr(std::min(pos, s.size())));
  b.bytes += out.size();
  auto c = std::make_shared<Node>(*n);
  c->text = std::move(out);
  return c;
}

NodePtr subst(const NodePtr& n, const Vars& v, Budget& b, Diagnostics& d, bool& ok) {
  if (b.spent()) return n;
  ++b.nodes;
  switch (n->kind) {
    case Node::Kind::Null: return n;
    case Node::Kind::Scalar: return subst_scalar(n, v, b, d, ok);
    case Node::Kind::List: {
      auto c = std::make_shared<Node>(*n);
      c->items.clear();
      for (const auto& item : n->items) {
        auto r = item->is_scalar() ? next_ref(item->text, 0) : std::nullopt;
        auto s = subst(item, v, b, d, ok);
        // `- << parameters.steps >>`: the steps go into the list.
        if (r && r->at == 0 && r->length == item->text.size() && s->is_list() && is_steps_param(r->path, v)) {
          for (const auto& x : s->items) c->items.push_back(x);
          b.nodes += s->items.size();
        } else {
          c->items.push_back(s);
        }
      }
      return c;
    }
    case Node::Kind::Map: {
      auto c = std::make_shared<Node>(*n);
      for (auto& [k, val] : c->entries) {
        if (next_ref(k.name, 0)) {
          auto kn = subst_scalar(scalar(k.name, true, k.mark, n->file, n->origin), v, b, d, ok);
          if (kn->is_scalar()) k.name = kn->text;
        }
        val = subst(val, v, b, d, ok);
      }
      return c;
    }
  }
  return n;
}

bool same(const Node& a, const Node& b) {
  if (a.kind != b.kind) return false;
  switch (a.kind) {
    case Node::Kind::Null: return true;
    case Node::Kind::Scalar: return a.text == b.text;
    case Node::Kind::List:
      return a.items.size() == b.items.size() &&
             std::equal(a.items.begin(), a.items.end(), b.items.begin(), [](const NodePtr& x, const NodePtr& y) { return same(*x, *y); });
    case Node::Kind::Map:
      if (a.entries.size() != b.entries.size()) return false;
      for (size_t i = 0; i < a.entries.size(); ++i)
        if (a.entries[i].first.name != b.entries[i].first.name || !same(*a.entries[i].second, *b.entries[i].second))
          return false;
      return true;
  }
  return false;
}

constexpr const char* kLogic = "and: [...], or: [...], not: X, equal: [A, B], matches: {pattern: RE, value: V}, or a value";

}  // namespace

NodePtr substitute(const NodePtr& n, const Vars& v, Budget& b, Diagnostics& d) {
  bool ok = true;
  auto out = subst(n, v, b, d, ok);
  return ok ? out : nullptr;
}

std::optional<bool> evaluate(const NodePtr& n, Diagnostics& d) {
  switch (n->kind) {
    case Node::Kind::Null: return false;
    case Node::Kind::Scalar:
      // CircleCI's truthiness: false, null, 0, NaN and empty text are false.
      return truthy_text(n->text, n->plain);
    case Node::Kind::List:
      error_at(d, *n, "a list is not a logic statement", kLogic);
      return std::nullopt;
    case Node::Kind::Map: break;
  }
  if (n->entries.size() != 1) {
    error_at(d, *n, "a logic statement has exactly one key", kLogic);
    return std::nullopt;
  }
  const Key& k = n->entries.front().first;
  const NodePtr& v = n->entries.front().second;
  auto list_of = [&](const char* what) -> const std::vector<NodePtr>* {
    if (v->is_list()) return &v->items;
    error_at(d, *v, std::string("`") + what + "` takes a list, found " + describe(*v), kLogic);
    return nullptr;
  };
  if (k.name == "and" || k.name == "or") {
    const auto* items = list_of(k.name.c_str());
    if (!items) return std::nullopt;
    // Statements with no arguments are false.
    if (items->empty()) return false;
    bool all = true, any = false;
    for (const auto& i : *items) {
      auto r = evaluate(i, d);
      if (!r) return std::nullopt;
      all = all && *r;
      any = any || *r;
    }
    return k.name == "and" ? all : any;
  }
  if (k.name == "not") {
    auto r = evaluate(v, d);
    if (!r) return std::nullopt;
    return !*r;
  }
  if (k.name == "equal") {
    const auto* items = list_of("equal");
    if (!items) return std::nullopt;
    if (items->empty()) return false;
    return std::all_of(items->begin(), items->end(), [&](const NodePtr& i) { return same(*i, *items->front()); });
  }
  if (k.name == "matches") {
    NodePtr pattern = v->is_map() ? v->get("pattern") : nullptr, value = v->is_map() ? v->get("value") : nullptr;
    if (!pattern || !value || !pattern->is_scalar() || !(value->is_scalar() || value->is_null()) || v->entries.size() != 2) {
      error_at(d, *v, "`matches` takes `pattern:` and `value:`", "matches: {pattern: \"^main$\", value: << pipeline.git.branch >>}");
      return std::nullopt;
    }
    // Bounded: std::regex backtracks, and both sides come from the job file.
    if (pattern->text.size() > 256 || value->text.size() > 4096) {
      error_at(d, *pattern, "`matches` takes a pattern of at most 256 bytes and a value of at most 4096", "a shorter pattern");
      return std::nullopt;
    }
    try {
      // CircleCI matches the whole value (Java's String.matches).
      return std::regex_match(value->text, std::regex(pattern->text, std::regex::ECMAScript));
    } catch (const std::regex_error& e) {
      error_at(d, *pattern, "`matches` pattern " + describe(*pattern) + " is not a regular expression: " + e.what(),
               "a regular expression such as ^release/.*$");
      return std::nullopt;
    }
  }
  const Place p = place_of(k.mark, v->file, v->origin);
  d.error(p.mark, "`" + yaml::printable(k.name) + "` is not a logic statement" + p.via, kLogic);
  return std::nullopt;
}

}  // namespace gh::job::cfg
