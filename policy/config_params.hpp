// Parameters, `<< ... >>` references and logic statements of CircleCI 2.1
// (docs/jobs.md, "Parameters"). Semantics and, where CircleCI has one, the
// wording of errors follow CircleCI's configuration reference.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "common/diagnostics.hpp"
#include "policy/config_tree.hpp"

namespace gh::job::cfg {

enum class ParamType { String, Boolean, Integer, Enum, Steps, EnvVarName, Executor };

struct ParamDecl {
  std::string name;
  ParamType type = ParamType::String;
  NodePtr default_value;  // null: required
  std::vector<std::string> enum_values;
  Mark mark;
};

// Reads a `parameters:` mapping (of a command, job, executor or the
// pipeline). `owner` names it in messages ("command `install`").
std::vector<ParamDecl> read_decls(const NodePtr& parameters, const std::string& owner, Diagnostics& d);

// Parameter values by name, each checked against its type. A boolean is
// the plain scalar true/false, an integer a plain decimal, steps a list.
using Bindings = std::map<std::string, NodePtr>;

// The arguments of one use (`args`: the keys other than the ones the use
// itself means, e.g. a job invocation's `requires`) checked against the
// declarations: unexpected and missing arguments, types, enum values.
// `what` is "command `install`"; `at` the use, for missing arguments.
std::optional<Bindings> bind(const std::vector<ParamDecl>& decls, const std::vector<std::pair<Key, NodePtr>>& args,
                             const std::string& what, Mark at, Diagnostics& d);

// One value checked against one declaration (also for --param).
NodePtr check_value(const ParamDecl& p, const NodePtr& v, const std::string& what, Diagnostics& d);

// What `<< ... >>` can name where a node is being substituted.
struct Vars {
  const Bindings* parameters = nullptr;           // the command's, job's or executor's; null: none here
  const std::vector<ParamDecl>* decls = nullptr;  // their declarations (for steps splicing)
  const Bindings* pipeline_parameters = nullptr;  // `<< pipeline.parameters.x >>`
  const std::map<std::string, std::string>* pipeline = nullptr;  // "git.branch" -> value
  std::string where;                              // "command `install`", for messages
  const std::string* source = nullptr;            // the user's file, to point into a scalar
};

// Processing's bounds: a config that expands exponentially is refused at
// the use that crosses one.
struct Budget {
  size_t nodes = 0, bytes = 0;
  static constexpr size_t kMaxNodes = 200'000;
  static constexpr size_t kMaxBytes = 8u << 20;
  bool spent() const { return nodes > kMaxNodes || bytes > kMaxBytes; }
};

// n with every reference replaced. A scalar that is exactly one reference
// becomes the value itself (a boolean stays a boolean, steps a list; a list
// item that is a steps parameter is spliced into the list); references in
// text are replaced by the value's text. `\<<` is a literal `<<`.
// nullptr after an error (reported).
NodePtr substitute(const NodePtr& n, const Vars& v, Budget& b, Diagnostics& d);

// A logic statement (`when: {condition: ...}`), substituted already.
std::optional<bool> evaluate(const NodePtr& logic, Diagnostics& d);

// The pipeline values `<< pipeline.x >>` names, from the caller's input.
std::map<std::string, std::string> pipeline_values(const std::string& project, const std::string& branch,
                                                   const std::string& tag, const std::string& revision,
                                                   uint64_t number, const std::string& id);

}  // namespace gh::job::cfg
