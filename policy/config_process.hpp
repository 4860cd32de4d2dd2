// CircleCI 2.1 processing of one config (docs/jobs.md, "How a config is
// processed"): orbs (inline, or packed files the broker read from the local
// orb folder), executors, commands, parameters, `<< ... >>` and `when` /
// `unless` steps, expanded into plain jobs the job parser then checks.
//
// Expansion is bounded (Budget, kMaxDepth, the job's kMaxSteps): a config
// that expands exponentially is refused at the use that crosses a bound.
#pragma once

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/diagnostics.hpp"
#include "policy/config_params.hpp"
#include "policy/config_tree.hpp"
#include "policy/job.hpp"
#include "policy/workflow.hpp"

namespace gh::job::cfg {

inline constexpr int kMaxDepth = 32;      // commands within commands
inline constexpr int kMaxOrbDepth = 4;    // orbs naming orbs
inline constexpr size_t kMaxExpandedSteps = 10 * kMaxSteps;  // then the job parser's kMaxSteps

// The definitions one config or one orb makes.
struct Scope {
  std::string what;  // "" for the config, else "orb `node` (circleci/node@5.1.0)"
  std::string file;  // "" for the user's file, else the orb's display name
  std::map<std::string, NodePtr> commands, executors, jobs;
  std::map<std::string, std::shared_ptr<Scope>> orbs;  // by the alias `orbs:` gives, once loaded
  std::map<std::string, NodePtr> orb_refs;             // alias -> `ns/name@version`, loaded on first use
  int depth = 0;                                       // of orbs within orbs
};

// One use of a job: by a workflow (with arguments) or by name.
struct JobUse {
  std::string job;    // the `jobs:` key, or `orb/job`
  std::vector<std::pair<Key, NodePtr>> arguments;
  Mark at;            // the use (a workflow's line), or {} for --job
  NodePtr pre_steps, post_steps;
};

// A workflow's invocation of a job as a use: its arguments (matrix values
// marked where the matrix names them), pre-steps and post-steps.
JobUse use_of(const workflow::Invocation& iv, Diagnostics& d);

class Processor {
 public:
  // root: the whole config (after yaml::load). Orbs come from in.orbs,
  // read when a job uses one; the ones missing are listed in needed_orbs()
  // and the job is to be processed again once the caller has them.
  // source: the user's file, for pointing into its scalars.
  Processor(const NodePtr& root, const ProcessInput& in, Diagnostics& d, const std::string& source);

  const std::vector<std::string>& needed_orbs() const { return needed_orbs_; }
  const Scope& config() const { return *config_; }
  const Bindings& pipeline_parameters() const { return pipeline_parameters_; }
  const std::map<std::string, std::string>& pipeline() const { return pipeline_; }

  // The job as the job parser reads it: executor merged, parameters and
  // references substituted, commands and conditions expanded. nullptr
  // after errors (reported).
  NodePtr job(const JobUse& use);

  // Pipeline values and parameters only (workflow conditions and names).
  NodePtr substitute_pipeline(const NodePtr& n);

 private:
  std::shared_ptr<Scope> read_scope(const NodePtr& map, const std::string& what, const std::string& file, int depth);
  void read_orbs(Scope& into, const NodePtr& orbs, int depth);
  NodePtr find(Scope& s, const std::string& name, std::map<std::string, NodePtr> Scope::*table, Scope** owner);
  // The orb `alias` names in s, loaded now; nullptr when it is not (an
  // error was reported, or the caller has yet to read it: needed_orbs).
  Scope* orb(Scope& s, const std::string& alias);
  NodePtr executor(Scope& s, const NodePtr& ref, const NodePtr& job_body);
  bool expand_step_arguments(Scope& s, const std::vector<ParamDecl>& decls,
                             std::vector<std::pair<Key, NodePtr>>& args, int depth, std::vector<std::string>& stack);
  bool expand_steps(Scope& s, const NodePtr& list, std::vector<NodePtr>& out, int depth,
                    std::vector<std::string>& stack);
  bool expand_step(Scope& s, const NodePtr& item, std::vector<NodePtr>& out, int depth,
                   std::vector<std::string>& stack);

  const ProcessInput& in_;
  Diagnostics& d_;
  std::shared_ptr<Scope> config_;
  std::vector<std::string> needed_orbs_;
  Bindings pipeline_parameters_;
  std::vector<ParamDecl> pipeline_decls_;
  std::map<std::string, std::string> pipeline_;
  Budget budget_;
  const std::string& source_;
  Vars vars(const Bindings* b, const std::vector<ParamDecl>* decls, const std::string& where) const {
    return Vars{b, decls, &pipeline_parameters_, &pipeline_, where, &source_};
  }
};

}  // namespace gh::job::cfg
