// The written form of a workflow, before matrix expansion (workflow.cpp
// expands, names and orders it). Internal to policy/workflow*.cpp and the
// unit tests.
#pragma once

#include <map>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "policy/workflow.hpp"

namespace gh::job::workflow::detail {

// A branch or tag specifier: a name, or `/regex/` matching the whole name.
struct Pattern {
  std::string text;
  std::optional<std::regex> re;
};
struct Rule {
  bool has_only = false, has_ignore = false;
  std::vector<Pattern> only, ignore;
};
struct Filters {
  std::optional<Rule> branches, tags;
};

// True when a job with these filters runs in a pipeline of in.branch or,
// when in.tag is set, of that tag (workflow.hpp has the rules).
bool passes(const Filters& f, const ProcessInput& in);

// One item of a workflow's `jobs:` as written.
struct Raw {
  std::string job;
  Mark mark;
  std::optional<std::string> name;  // `name:`, matrix references not yet substituted
  Mark name_mark;
  std::vector<std::pair<std::string, Mark>> requires_;
  bool approval = false;
  Filters filters;
  std::vector<yaml::Entry> args;
  YAML::Node pre_steps, post_steps;  // null when absent
  Mark pre_mark, post_mark;
  bool has_matrix = false;
  // The matrix's parameters sorted by name, each with its values (scalars).
  std::vector<std::pair<std::string, std::vector<YAML::Node>>> params;
  std::map<std::string, Mark> param_marks;
  std::vector<std::vector<std::pair<std::string, std::string>>> excludes;  // parameter -> value text
  std::string alias;
};

// Reads the workflow entry `e` (its `jobs:`, `when`, `unless`; `triggers`
// warned about) into `wf` and returns its invocations as written; nullopt
// when it cannot be read at all (errors in d). Bounds the expansion each
// matrix will make before anything is expanded.
std::optional<std::vector<Raw>> read_body(const yaml::Entry& e, Workflow& wf, Diagnostics& d);

struct MatrixRef {
  size_t pos = 0, len = 0;
  std::string name;
};
// The first `<< matrix.NAME >>` in s at or after `from`.
std::optional<MatrixRef> find_matrix_ref(std::string_view s, size_t from);

}  // namespace gh::job::workflow::detail
