// Parameters, references and logic statements (config_params.hpp).
#include "policy/config_params.hpp"

#include <algorithm>
#include <cctype>
#include <regex>

#include "common/yaml_util.hpp"

namespace gh::job::cfg {

namespace {

std::optional<bool> bool_word(const Node& n) {
  if (!n.is_scalar() || !n.plain) return std::nullopt;
  return yaml::bool_word(n.text);
}

bool integer_text(const Node& n) {
  if (!n.is_scalar() || !n.plain || n.text.empty() || n.text.size() > 18) return false;
  const size_t start = n.text[0] == '-' ? 1 : 0;
  return start < n.text.size() &&
         std::all_of(n.text.begin() + static_cast<long>(start), n.text.end(), [](unsigned char c) { return std::isdigit(c); });
}

bool env_var_name(const std::string& s) {
  if (s.empty() || s.size() > 256 || !(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
  return std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isalnum(c) || c == '_'; });
}

constexpr const char* kTypes = "string, boolean, integer, enum, steps, env_var_name, executor";

std::optional<ParamType> type_of(const std::string& s) {
  if (s == "string") return ParamType::String;
  if (s == "boolean") return ParamType::Boolean;
  if (s == "integer") return ParamType::Integer;
  if (s == "enum") return ParamType::Enum;
  if (s == "steps") return ParamType::Steps;
  if (s == "env_var_name") return ParamType::EnvVarName;
  if (s == "executor") return ParamType::Executor;
  return std::nullopt;
}

const char* type_name(ParamType t) {
  switch (t) {
    case ParamType::String: return "string";
    case ParamType::Boolean: return "boolean";
    case ParamType::Integer: return "integer";
    case ParamType::Enum: return "enum";
    case ParamType::Steps: return "steps";
    case ParamType::EnvVarName: return "env_var_name";
    case ParamType::Executor: return "executor";
  }
  return "string";
}

}  // namespace

std::vector<ParamDecl> read_decls(const NodePtr& parameters, const std::string& owner, Diagnostics& d) {
  std::vector<ParamDecl> out;
  if (!parameters || parameters->is_null()) return out;
  if (!parameters->is_map()) {
    error_at(d, *parameters, "`parameters` of " + owner + " must be a mapping, found " + describe(*parameters),
             "NAME: {type: string, default: ...}");
    return out;
  }
  for (const auto& [k, v] : parameters->entries) {
    ParamDecl p;
    p.name = k.name;
    p.mark = k.mark;
    if (!env_var_name(k.name) && k.name.find('-') == std::string::npos) {
      error_at(d, *v, "parameter name `" + yaml::printable(k.name) + "` of " + owner + " is not valid",
               "letters, digits, _ and -");
      continue;
    }
    if (!v->is_map()) {
      error_at(d, *v, "parameter `" + k.name + "` of " + owner + " must be a mapping with `type:`, found " + describe(*v),
               "type: string (and description, default)");
      continue;
    }
    bool ok = true, has_type = false;
    for (const auto& [pk, pv] : v->entries) {
      if (pk.name == "type") {
        has_type = true;
        auto t = pv->is_scalar() ? type_of(pv->text) : std::nullopt;
        if (!t) {
          error_at(d, *pv, "parameter `" + k.name + "` has an unknown type " + describe(*pv), kTypes);
          ok = false;
        } else {
          p.type = *t;
        }
      } else if (pk.name == "default") {
        p.default_value = pv;
      } else if (pk.name == "enum") {
        if (!pv->is_list() || pv->items.empty()) {
          error_at(d, *pv, "`enum` of parameter `" + k.name + "` must be a list of values", "enum: [a, b]");
          ok = false;
          continue;
        }
        for (const auto& e : pv->items) {
          if (e->is_scalar()) p.enum_values.push_back(e->text);
          else {
            error_at(d, *e, "an `enum` value must be a string, found " + describe(*e), "enum: [a, b]");
            ok = false;
          }
        }
      } else if (pk.name != "description") {
        const Place pl = place_of(pk.mark, v->file, v->origin);
        d.error(pl.mark, "unknown key `" + yaml::printable(pk.name) + "` in parameter `" + k.name + "`" + pl.via,
                "type, default, description, enum");
      }
    }
    if (!has_type) {
      error_at(d, *v, "parameter `" + k.name + "` of " + owner + " has no `type:`", kTypes);
      continue;
    }
    if (p.type == ParamType::Enum && p.enum_values.empty() && ok) {
      error_at(d, *v, "enum parameter `" + k.name + "` has no `enum:` list", "enum: [a, b]");
      ok = false;
    }
    if (!ok) continue;
    if (p.default_value && !p.default_value->is_null()) {
      auto checked = check_value(p, p.default_value, "the default of parameter `" + k.name + "`", d);
      if (!checked) continue;
      p.default_value = checked;
    } else if (p.default_value && p.type == ParamType::Steps) {
      p.default_value = std::make_shared<Node>(Node{Node::Kind::List, {}, true, {}, {}, p.default_value->mark, v->file, v->origin});
    } else if (p.default_value && p.type == ParamType::String) {
      p.default_value = scalar("", false, p.default_value->mark, v->file, v->origin);
    }
    out.push_back(std::move(p));
  }
  return out;
}

NodePtr check_value(const ParamDecl& p, const NodePtr& v, const std::string& what, Diagnostics& d) {
  const std::string type = type_name(p.type);
  auto bad = [&](const std::string& expected) -> NodePtr {
    error_at(d, *v, what + ": expected " + expected + ", found " + describe(*v), "a value of type " + type);
    return nullptr;
  };
  switch (p.type) {
    case ParamType::String:
      if (v->is_null()) return scalar("", false, v->mark, v->file, v->origin);
      if (!v->is_scalar()) return bad("a string");
      return v;
    case ParamType::Boolean: {
      auto b = bool_word(*v);
      if (!b) return bad("true or false");
      return scalar(*b ? "true" : "false", true, v->mark, v->file, v->origin);
    }
    case ParamType::Integer:
      if (!integer_text(*v)) return bad("a whole number");
      return v;
    case ParamType::Enum:
      if (!v->is_scalar()) return bad("one of " + yaml::join(p.enum_values));
      if (std::find(p.enum_values.begin(), p.enum_values.end(), v->text) == p.enum_values.end()) {
        error_at(d, *v, what + ": " + describe(*v) + " is not one of the enum's values", yaml::join(p.enum_values));
        return nullptr;
      }
      return scalar(v->text, false, v->mark, v->file, v->origin);
    case ParamType::Steps:
      if (v->is_null()) return std::make_shared<Node>(Node{Node::Kind::List, {}, true, {}, {}, v->mark, v->file, v->origin});
      if (v->is_map()) {
        // One step written without the list.
        auto l = std::make_shared<Node>(Node{Node::Kind::List, {}, true, {v}, {}, v->mark, v->file, v->origin});
        return l;
      }
      if (!v->is_list()) return bad("a list of steps");
      return v;
    case ParamType::EnvVarName:
      if (!v->is_scalar() || !env_var_name(v->text)) return bad("an environment variable name");
      return v;
    case ParamType::Executor:
      if (!(v->is_scalar() && !v->text.empty()) && !v->is_map()) return bad("an executor's name or `name:` with its parameters");
      return v;
  }
  return v;
}

std::optional<Bindings> bind(const std::vector<ParamDecl>& decls, const std::vector<std::pair<Key, NodePtr>>& args,
                             const std::string& what, Mark at, Diagnostics& d) {
  Bindings out;
  bool ok = true;
  std::vector<std::string> unexpected, missing;
  for (const auto& arg : args) {
    const Key& k = arg.first;
    const NodePtr& v = arg.second;
    auto it = std::find_if(decls.begin(), decls.end(), [&](const ParamDecl& p) { return p.name == k.name; });
    if (it == decls.end()) {
      unexpected.push_back(k.name);
      const Place pl = place_of(k.mark, v->file, v->origin);
      d.error(pl.mark, "Unexpected argument(s): " + yaml::printable(k.name) + " (" + what + " declares " +
              (decls.empty() ? std::string("no parameters") : "no parameter `" + yaml::printable(k.name) + "`") + ")" + pl.via,
              decls.empty() ? std::string("no arguments") : [&] {
                std::vector<std::string> names;
                for (const auto& p : decls) names.push_back(p.name);
                return yaml::join(names);
              }());
      ok = false;
      continue;
    }
    auto checked = check_value(*it, v, "argument `" + k.name + "` of " + what, d);
    if (!checked) {
      ok = false;
      continue;
    }
    out[k.name] = checked;
  }
  for (const auto& p : decls) {
    if (out.count(p.name) || std::any_of(args.begin(), args.end(), [&](const auto& a) { return a.first.name == p.name; }))
      continue;
    if (p.default_value) out[p.name] = p.default_value;
    else missing.push_back(p.name);
  }
  if (!missing.empty()) {
    d.error(at, "Missing required argument(s): " + yaml::join(missing) + " (" + what + " has no default for " +
            (missing.size() == 1 ? "it" : "them") + ")", "NAME: value for each required parameter");
    ok = false;
  }
  if (!ok) return std::nullopt;
  return out;
}

std::map<std::string, std::string> pipeline_values(const std::string& project, const std::string& branch,
                                                   const std::string& tag, const std::string& revision,
                                                   uint64_t number, const std::string& id) {
  return {{"id", id},
          {"number", std::to_string(number)},
          {"project.git_url", project},
          {"project.type", "gatehouse"},
          {"git.branch", branch},
          {"git.tag", tag},
          {"git.revision", revision},
          {"git.base_revision", ""},
          {"trigger_source", "gatehouse"},
          {"schedule.name", ""},
          {"schedule.id", ""}};
}

}  // namespace gh::job::cfg
