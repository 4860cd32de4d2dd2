// The parent of several runs (cli/run_parent.cpp): a job's nodes, a
// workflow's jobs. It stays root to start each run's broker, so it reads
// as little as it can: a workflow's plan (a typed message from
// `gatehouse-broker plan`), each run's exit status, and the node count a
// run's nobody front end reports (four bytes). Never a job's output.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include "cli/run_command.hpp"

namespace gh::cli {

// cli/run_command.cpp
std::string broker_binary();
pid_t start_broker(const std::vector<std::string>& args, int channel);
// The pipeline's flags for `gatehouse-broker run` and `plan` (--workflow,
// --param, --revision, --pipeline-*, --project, --branch, --tag).
std::vector<std::string> pipeline_args(const RunOptions& o);

// How the nodes of one job went.
struct NodesOutcome {
  int exit_code = 0;     // the worst node's (common/exit_status.hpp)
  uint32_t total = 1;    // the job's nodes, as known at the end
  uint32_t ran = 0;      // nodes started
  bool canceled = false; // SIGINT or SIGTERM arrived: no node was started after it
  std::chrono::milliseconds duration{0};
  std::vector<std::pair<uint32_t, int>> nodes;  // (node index, exit status) in the order they ended
};

// Runs nodes `first` to `total` - 1 of the job `base` names (each with its
// --node-index; base names none), at most `parallel` at once, each a forked child running run_front_end. With learn_total,
// node 0 runs alone first and the count its header reports (a job whose
// parallelism the caller could not know) replaces `total` when larger.
// SIGINT, SIGTERM, or anything (or the end) on `cancel_fd` is passed on to
// the running children as SIGTERM and stops further starts.
NodesOutcome run_nodes(const RunOptions& base, uint32_t total, bool learn_total, uint32_t parallel,
                       uint32_t first = 0, int cancel_fd = -1);

// The plain `gatehouse run FILE [--job J]` without --node-index: the front
// end that runs node 0 forks this root helper before it drops to nobody,
// and the helper runs the job's other nodes when the header says there are
// any. With one node (the usual case) the helper ends when told so, and the
// front end never waits for it: the job's start and end pay one fork, no
// extra wake-up (run_parent.cpp says why it is this way round).
class NodeHelper {
 public:
  NodeHelper() = default;
  // Forks the helper; `close_in_child` are the front end's fds it must not
  // hold (the broker's channel: the broker must see the front end go).
  static NodeHelper start(const RunOptions& o, const std::vector<int>& close_in_child);
  bool running() const { return to_ >= 0; }
  // The node count from the job's header; 1 lets the helper go.
  void count(uint32_t total);
  // After node 0's run, which ended with `code`: with more nodes, the
  // helper runs them and this returns the worst exit status of all
  // (passing on a cancel read from `sigfd` meanwhile); otherwise `code`.
  int finish(int code, bool canceled, int sigfd);

 private:
  int to_ = -1, from_ = -1;
  bool counted_ = false, failed_ = false;
  uint32_t total_ = 0;
};

// Whether SIGINT or SIGTERM reached the parent (pending or consumed).
bool parent_canceled();

// `gatehouse run FILE --workflow W` (cli/run_workflow.cpp).
int run_workflow(const RunOptions& o);

// Where the parent's own lines go: stdout, or stderr when --stream-fd
// makes stdout the caller's.
void parent_say(const RunOptions& o, const std::string& line);
std::string format_duration(std::chrono::milliseconds d);
// "passed", "failed", "bad input", "refused", "error" for an exit status.
std::string result_word(int code);
// "Job J: 3 of 3 nodes ran in 1.20s: node 0 passed, node 1 failed, node 2 passed."
std::string nodes_line(const std::string& job, const NodesOutcome& n);

}  // namespace gh::cli
