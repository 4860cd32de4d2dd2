// The tree CircleCI 2.1 processing works on (docs/jobs.md, "How a config is
// processed"). yaml-cpp nodes cannot carry a mark once they are copied or
// made anew, and processing makes many: a parameter's value substituted into
// a command's text, a command's steps spliced into a job. Every node here
// keeps where it was written and, when processing put it somewhere else,
// the chain of invocations that did (`Origin`), so an error found after
// expansion still points at the user's line.
//
// Processing ends by writing the tree out as YAML (emit): that text is what
// `gatehouse config process` prints and what the job parser reads, and its
// line map takes each error back to the line that caused it.
#pragma once

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "common/diagnostics.hpp"

namespace gh::job::cfg {

// Where an expanded node came from: "command `install` (used at 12:9)". The
// outermost link is in the user's file; inner ones may be in an orb.
struct Origin {
  std::string what;    // "command `install`", "executor `linux`", "orb `circleci/node@5.1.0`"
  std::string file;    // "" = the user's file
  Mark at;             // where it was used
  std::shared_ptr<const Origin> outer;
};
using OriginPtr = std::shared_ptr<const Origin>;

struct Node;
using NodePtr = std::shared_ptr<const Node>;

struct Key {
  std::string name;
  Mark mark;
};

struct Node {
  enum class Kind { Null, Scalar, List, Map };
  Kind kind = Kind::Null;
  std::string text;   // Scalar
  bool plain = true;  // Scalar: written without quotes (so `true`, `3` are not strings)
  std::vector<NodePtr> items;                    // List
  std::vector<std::pair<Key, NodePtr>> entries;  // Map, in file order, merge keys applied
  Mark mark;
  std::string file;   // "" = the user's file; else the orb's display name
  OriginPtr origin;   // null: not moved by processing

  bool is_map() const { return kind == Kind::Map; }
  bool is_list() const { return kind == Kind::List; }
  bool is_scalar() const { return kind == Kind::Scalar; }
  bool is_null() const { return kind == Kind::Null; }
  // The value of `key` in a mapping, or null.
  NodePtr get(std::string_view key) const;
};

NodePtr scalar(std::string text, bool plain, Mark m, const std::string& file = {}, OriginPtr origin = {});
NodePtr null_node(Mark m);

// The yaml-cpp tree (after yaml::load's guard) as a Node tree. Merge keys
// are applied with yaml::entries (errors go to d); aliases are copied, which
// the guard's node budget bounds.
NodePtr from_yaml(const YAML::Node& n, Diagnostics& d, const std::string& file = {});

// The same node with another origin, deeply (every node it holds gets it,
// unless the node already has one: then the new link goes outermost).
NodePtr with_origin(const NodePtr& n, const OriginPtr& o);

// "a mapping", "a list", "nothing (null)", "`text`", for messages.
std::string describe(const Node& n);

// Where the user should look for n: its own mark when it was written in the
// user's file, else the outermost use in the user's file; plus, when it was
// moved, " (in command `x` used at 12:9, ...)" for the message.
struct Place {
  Mark mark;
  std::string via;
};
Place place_of(const Node& n);
Place place_of(Mark m, const std::string& file, const OriginPtr& origin);

// An error about n at its place, with the uses that moved it.
void error_at(Diagnostics& d, const Node& n, const std::string& message, const std::string& allowed);

// Writes the tree as block-style YAML, one key or item per line. lines[i]
// says what line i+1 of the text holds, for taking errors found in the
// text back to the user's file.
struct LineSource {
  NodePtr key;          // the key the line starts with (a node marked at the key), or the item
  NodePtr value;        // the value that follows on the line, if any
  int value_column = 0;  // 1-based column where it starts
  NodePtr list;          // a list item's line: the list, which a reader marks at the first `-`
  int dash_column = 0;
  const Node& at(int column) const {
    if (list && column == dash_column) return *list;
    return value && column >= value_column ? *value : *key;
  }
};
struct Emitted {
  std::string text;
  std::vector<LineSource> lines;
  // The node behind line:column of the text, or nullptr outside it.
  const Node* at(Mark m) const {
    if (m.line <= 0 || static_cast<size_t>(m.line) > lines.size()) return nullptr;
    return &lines[static_cast<size_t>(m.line) - 1].at(m.column);
  }
};
// nullopt when the text would pass max_bytes.
std::optional<Emitted> emit(const Node& root, size_t max_bytes);

}  // namespace gh::job::cfg
